package cron

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// legacySchedule is the wall-clock mapping as it was before the repeat and
// gap policies, kept to show that the default policies change nothing. It
// asks zoneBounds, not ZoneBounds, for the bounds of a period: Go's bounds
// can end before the instant asked about (see zoneBounds), and the old
// real-time walk then shifted a wall time by the wrong offset.
type legacySchedule struct{ *specSchedule }

func (s legacySchedule) Next(t time.Time) time.Time {
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
	case s.wall.Hour&allHours == allHours:
		n = s.nextRealTime(t)
	default:
		n = s.nextWallTime(t)
	}
	if n.IsZero() || n.Unix() > maxUnix {
		return time.Time{}
	}
	return n
}

func legacyWallClock(t time.Time, loc *time.Location) (time.Time, int64) {
	_, off := t.In(loc).Zone()
	return time.Unix(t.Unix()+int64(off), int64(t.Nanosecond())).UTC(), int64(off)
}

// nextRealTime steps through the zone's periods of constant offset: within a
// period, wall time and real time advance together, so the first matching
// wall time after t's, shifted by the period's offset, is the answer unless
// it falls past the period's end. Then the search continues from the first
// instant of the next period. Repeated wall times thus match once per copy,
// and wall times in a gap never match.
func (s legacySchedule) nextRealTime(t time.Time) time.Time {
	cur := t.In(s.loc)
	inclusive := false // search from cur itself, not strictly after it
	for {
		w, off := legacyWallClock(cur, s.loc)
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
		_, end := zoneBounds(cur)
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
func (s legacySchedule) nextWallTime(t time.Time) time.Time {
	tl := t.In(s.loc)
	w, off := legacyWallClock(tl, s.loc)
	// In the second copy of a repeated hour, the wall times up to the end of
	// the repetition map to their first copies, all before t: skip them.
	if start, _ := zoneBounds(tl); !start.IsZero() {
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
func (s legacySchedule) firstInstant(w time.Time) time.Time {
	u := w.Unix()
	// For a reading that exists, time.Date returns one of its instants; for a
	// reading in a gap, an instant next to the gap. Which one is unspecified,
	// so look at both sides.
	x := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, s.loc)
	_, xOff := x.Zone()
	xWall := x.Unix() + int64(xOff)
	start, end := zoneBounds(x)
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

// TestDefaultPoliciesAsBefore compares the default policies with the mapping
// they replaced, on random specs, zones and instants, half of them within a
// day of a transition.
func TestDefaultPoliciesAsBefore(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 2026))
	n := 5000
	if testing.Short() {
		n = 500
	}
	for range n {
		spec := randomSpec(rng)
		zone := fuzzZones[rng.IntN(len(fuzzZones))]
		loc, err := LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		sched, err := Parse(spec, Options{Location: loc})
		if err != nil {
			continue // e.g. Feb 30
		}
		s, ok := sched.(*specSchedule)
		if !ok {
			t.Fatalf("Parse(%q) is a %T", spec, sched)
		}
		old := legacySchedule{s}
		at := time.Unix(rng.Int64N(9000000000)-2500000000, rng.Int64N(1e9)).In(loc)
		if rng.IntN(2) == 0 {
			if _, end := at.ZoneBounds(); !end.IsZero() {
				at = end.Add(time.Duration(rng.Int64N(int64(48*time.Hour))) - 24*time.Hour)
			}
		}
		for range 20 {
			want, got := old.Next(at), s.Next(at)
			if !got.Equal(want) {
				t.Fatalf("Parse(%q, %s).Next(%v) = %v, was %v", spec, zone, at, got.In(loc), want.In(loc))
			}
			if got.IsZero() {
				break
			}
			at = got
		}
	}
}

// randomSpec returns a spec with a seconds field, mostly small hour and day
// sets so that many land on transitions.
func randomSpec(rng *rand.Rand) string {
	pick := func(choices ...string) string { return choices[rng.IntN(len(choices))] }
	num := func(lo, hi int) string { return fmt.Sprint(lo + rng.IntN(hi-lo+1)) }
	f := []string{
		pick("0", "0", "*/20", "*", num(0, 59), "*/7"),
		pick("0", "*/15", "*", num(0, 59), "*/1", "30", "0,30", "5-10"),
		pick("*", num(0, 23), num(0, 3), "0-3", "1,2", "*/2", "2", "0", "23", "22-23", "1-2"),
		pick("*", "*", num(1, 31), "1-7", "29"),
		pick("*", "*", num(1, 12), "3,4,9,10,11", "2"),
		pick("*", "*", "0", "6", "1-5"),
	}
	return strings.Join(f, " ")
}
