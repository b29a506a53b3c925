package cron

import (
	"time"

	robfig "github.com/robfig/cron/v3"
)

const (
	// Due instants lie after the zero time, which means "never" to callers,
	// and within the years an occurrence id can spell.
	maxYear = 9999
	maxUnix = 253402300799 // 9999-12-31T23:59:59Z
	// starBit is how robfig marks a field written as * or ?.
	starBit = 1 << 63
	// allHours has the bits of hours 0 to 23.
	allHours = 1<<24 - 1
	// robfig searches five years ahead, then gives up; three searches cover
	// the eight years between Feb 29 2096 and Feb 29 2104.
	searchYears = 5
	searches    = 3
)

// specSchedule evaluates a robfig SpecSchedule in wall-clock space (Location
// UTC, where no day has a gap or a repeated hour) and maps wall times to
// instants in loc; see the package doc for the two mappings.
type specSchedule struct {
	wall     robfig.SpecSchedule // Location is always UTC
	loc      *time.Location
	realTime bool // hour field covers all hours: follow real time
}

func newSpecSchedule(ss robfig.SpecSchedule, loc *time.Location) *specSchedule {
	ss.Location = time.UTC
	return &specSchedule{
		wall:     ss,
		loc:      loc,
		realTime: ss.Hour&allHours == allHours,
	}
}

// canMatch reports whether some date satisfies the day and month fields. The
// time-of-day fields always have at least one value once parsed.
func canMatch(s *robfig.SpecSchedule) bool {
	// robfig ORs day-of-month and day-of-week when both are restricted; any
	// day-of-week occurs in every month, so such a spec always matches. With
	// either one a wildcard they are ANDed, and only day-of-month can be
	// impossible (every month has every weekday).
	if s.Dom&starBit == 0 && s.Dow&starBit == 0 {
		return true
	}
	for m := time.January; m <= time.December; m++ {
		if s.Month&(1<<uint(m)) == 0 {
			continue
		}
		days := 29
		if m != time.February {
			days = time.Date(2001, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
		}
		for d := 1; d <= days; d++ {
			if s.Dom&(1<<uint(d)) != 0 {
				return true
			}
		}
	}
	return false
}

// Next returns the first due instant strictly after t, in the schedule's zone.
func (s *specSchedule) Next(t time.Time) time.Time {
	if t.Before(time.Time{}) {
		t = time.Time{}
	}
	if t.Unix() >= maxUnix {
		return time.Time{}
	}
	var n time.Time
	switch {
	case s.loc == time.UTC:
		n = s.nextWall(t.UTC())
	case s.realTime:
		n = s.nextRealTime(t)
	default:
		n = s.nextWallTime(t)
	}
	if n.IsZero() || n.Unix() > maxUnix {
		return time.Time{}
	}
	return n
}

// nextWall returns the first wall time matching the spec strictly after w
// (at whole seconds), or the zero time past the year 9999. Both w and the
// result are wall-clock readings expressed as UTC times.
func (s *specSchedule) nextWall(w time.Time) time.Time {
	for range searches {
		if n := s.wall.Next(w); !n.IsZero() {
			if n.Year() > maxYear {
				return time.Time{}
			}
			return n
		}
		// robfig gave up after five years; the spec matches some date (Parse
		// checked), so resume further on.
		y := w.Year() + searchYears
		if y > maxYear {
			return time.Time{}
		}
		w = time.Date(y, time.January, 1, 0, 0, 0, 0, time.UTC).Add(-time.Nanosecond)
	}
	return time.Time{}
}

// wallClock returns the wall-clock reading of t in loc as a UTC time, and
// the zone offset in seconds.
func wallClock(t time.Time, loc *time.Location) (time.Time, int64) {
	_, off := t.In(loc).Zone()
	return time.Unix(t.Unix()+int64(off), int64(t.Nanosecond())).UTC(), int64(off)
}

// nextRealTime steps through the zone's periods of constant offset: within a
// period, wall time and real time advance together, so the first matching
// wall time after t's, shifted by the period's offset, is the answer unless
// it falls past the period's end. Then the search continues from the first
// instant of the next period. Repeated wall times thus match once per copy,
// and wall times in a gap never match.
func (s *specSchedule) nextRealTime(t time.Time) time.Time {
	cur := t.In(s.loc)
	inclusive := false // search from cur itself, not strictly after it
	for {
		w, off := wallClock(cur, s.loc)
		if inclusive {
			// Transitions fall on whole seconds, and nextWall returns the
			// first match at or after the next whole second.
			w = w.Add(-time.Nanosecond)
		}
		nw := s.nextWall(w)
		if nw.IsZero() {
			return time.Time{}
		}
		n := time.Unix(nw.Unix()-off, 0)
		_, end := cur.ZoneBounds()
		if end.IsZero() || n.Before(end) || !end.After(cur) {
			return n.In(s.loc)
		}
		cur, inclusive = end, true
	}
}

// nextWallTime finds the first matching wall time whose instant (by
// firstInstant) is after t. firstInstant never decreases as the wall time
// grows, and the wall reading of t maps to at most t, so the search can start
// at t's own wall reading.
func (s *specSchedule) nextWallTime(t time.Time) time.Time {
	tl := t.In(s.loc)
	w, off := wallClock(tl, s.loc)
	// In the second copy of a repeated hour, the wall times up to the end of
	// the repetition map to their first copies, all before t: skip them.
	if start, _ := tl.ZoneBounds(); !start.IsZero() {
		_, prevOff := start.Add(-time.Nanosecond).Zone()
		if repeatEnd := start.Unix() + int64(prevOff); int64(prevOff) > off && w.Unix() < repeatEnd {
			w = time.Unix(repeatEnd, 0).UTC().Add(-time.Nanosecond)
		}
	}
	for {
		nw := s.nextWall(w)
		if nw.IsZero() {
			return time.Time{}
		}
		if n := s.firstInstant(nw); n.After(t) {
			return n
		}
		w = nw
	}
}

// firstInstant maps the wall time w (a UTC time holding the wall reading) to
// the first instant in s.loc with that reading or, when the reading falls in
// a gap, to the transition instant that ends the gap.
func (s *specSchedule) firstInstant(w time.Time) time.Time {
	u := w.Unix()
	// For a reading that exists, time.Date returns one of its instants; for a
	// reading in a gap, an instant next to the gap. Which one is unspecified,
	// so look at both sides.
	x := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, s.loc)
	_, xOff := x.Zone()
	xWall := x.Unix() + int64(xOff)
	start, end := x.ZoneBounds()
	switch {
	case xWall == u:
		// An earlier copy exists if the previous period had a larger offset
		// (fall back) and the reading also falls in it.
		if start.IsZero() {
			return x
		}
		_, prevOff := start.Add(-time.Nanosecond).Zone()
		if prevOff <= xOff {
			return x
		}
		if y := time.Unix(u-int64(prevOff), 0).In(s.loc); y.Before(x) {
			if _, yOff := y.Zone(); y.Unix()+int64(yOff) == u {
				return y
			}
		}
		return x
	case xWall < u && !end.IsZero():
		// x is just before the gap, which ends where x's period ends.
		return end
	case xWall > u && !start.IsZero():
		// x is just after the gap, which ends where x's period starts.
		return start
	}
	return x
}
