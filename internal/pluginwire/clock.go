package pluginwire

import (
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// A run's start travels as an instant of the machine's monotonic clock (CLOCK_MONOTONIC),
// which host and plugin share, which no step of the wall clock moves, and which does not
// care how long the request was in transit. Go keeps a monotonic reading in every
// time.Now, but relative to its own process; these two convert between the two. Each
// reads its clocks in the order that errs late: the start may come a few nanoseconds
// after its instant, never before.

// machineMonotonic is the machine's monotonic clock now, in nanoseconds.
func machineMonotonic() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("pluginwire: clock_gettime(CLOCK_MONOTONIC): " + err.Error()) // Linux always has it
	}
	return ts.Nano()
}

// toMachine converts t, a time.Now reading, into the machine's monotonic clock. An instant
// too far ahead for an int64 is sent as the latest one.
func toMachine(t time.Time) int64 {
	d := time.Until(t)
	m := machineMonotonic()
	if int64(d) > math.MaxInt64-m {
		return math.MaxInt64
	}
	return m + int64(d)
}

// fromMachine converts an instant of the machine's monotonic clock into a time.Now
// reading of this process. An instant too far back for a time.Duration from now (only
// another host than this package's would send one) is read as the earliest one, so that it
// is past, not wrapped around into the far future.
func fromMachine(ns int64) time.Time {
	m := machineMonotonic()
	if ns < math.MinInt64+m {
		return time.Now().Add(math.MinInt64)
	}
	return time.Now().Add(time.Duration(ns - m))
}
