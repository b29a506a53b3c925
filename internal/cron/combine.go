package cron

import "time"

// Union returns a schedule due whenever any of schedules is: its Next is the
// earliest of theirs, so an instant that several share is due once. Nil
// schedules are ignored; with none, the union is never due.
func Union(schedules ...Schedule) Schedule {
	u := make(union, 0, len(schedules))
	for _, s := range schedules {
		if s != nil {
			u = append(u, s)
		}
	}
	return u
}

type union []Schedule

// Next returns the earliest of the members' next instants.
func (u union) Next(t time.Time) time.Time {
	var best time.Time
	for _, s := range u {
		n := s.Next(t)
		// A member that does not advance must not take the union back.
		if n.IsZero() || !n.After(t) {
			continue
		}
		if best.IsZero() || n.Before(best) {
			best = n
		}
	}
	return best
}

// Bounded returns s limited to the instants from start to end, both
// included: its first occurrence is the first of s at or after start, and
// after end it is never due again. A zero start or end leaves that side
// open. A nil s is never due.
func Bounded(s Schedule, start, end time.Time) Schedule {
	if s == nil {
		return union(nil)
	}
	if start.IsZero() && end.IsZero() {
		return s // no bound: most jobs, each of which would keep a wrapper
	}
	return bounded{s: s, start: start, end: end}
}

type bounded struct {
	s          Schedule
	start, end time.Time // zero: open
}

// Next returns the first instant of s after t and not before start, or the
// zero time if that is after end.
func (b bounded) Next(t time.Time) time.Time {
	if !b.start.IsZero() && t.Before(b.start) {
		// Next is strictly after its input; start itself may be due.
		t = b.start.Add(-time.Nanosecond)
	}
	n := b.s.Next(t)
	if n.IsZero() || (!b.end.IsZero() && n.After(b.end)) {
		return time.Time{}
	}
	return n
}
