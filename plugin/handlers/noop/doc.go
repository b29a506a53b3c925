// Package noop is the built-in "noop" handler: it does nothing and returns
// at once, reporting when it started. The benchmark schedules it to measure
// a fleet's lateness (scheduled time to handler start) without the noise of
// real work. Its Schema is empty: a noop handler block takes no attributes,
// and Run fails permanently on any setting.
package noop
