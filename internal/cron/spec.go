package cron

import (
	"math"
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
	// maxPeriods bounds the walk through a zone's periods of constant
	// offset. Zones change offset a few times a year at most, so this is
	// thousands of years' worth; the walk ends at the year 9999 long before.
	maxPeriods = 1 << 16
)

// specSchedule evaluates a robfig SpecSchedule in wall-clock space (Location
// UTC, where no day has a gap or a repeated hour) and maps wall times to
// instants in loc as its policies say; see the package doc.
type specSchedule struct {
	wall   robfig.SpecSchedule // Location is always UTC
	loc    *time.Location
	gap    GapPolicy
	repeat RepeatPolicy
}

func newSpecSchedule(ss robfig.SpecSchedule, loc *time.Location, gap GapPolicy, repeat RepeatPolicy) *specSchedule {
	ss.Location = time.UTC
	if ss.Hour&allHours == allHours {
		// An interval follows real time: an hour that does not exist has no
		// runs, and a repeated hour runs in both of its real hours.
		gap, repeat = GapSkip, RepeatBoth
	}
	return &specSchedule{wall: ss, loc: loc, gap: gap, repeat: repeat}
}

// whyNever returns why no time satisfies s, or "" if some time does. Parse
// rejects such specs: Next would report "never" only after robfig had spent
// five years of searching, second by second if a time field is empty.
func whyNever(s *robfig.SpecSchedule) string {
	const values = ^uint64(starBit)
	// An empty list (",") parses to a field without values.
	for _, f := range []struct {
		name string
		bits uint64
	}{{"second", s.Second}, {"minute", s.Minute}, {"hour", s.Hour}, {"month", s.Month}} {
		if f.bits&values == 0 {
			return "the " + f.name + " field lists no values"
		}
	}
	// robfig ORs day-of-month and day-of-week when both are restricted, and
	// ANDs them when either is a wildcard. Every month has every weekday.
	domStar, dowStar := s.Dom&starBit != 0, s.Dow&starBit != 0
	if !domStar && !dowStar && s.Dow&values != 0 {
		return ""
	}
	if s.Dow&values == 0 && (domStar || dowStar) {
		return "the day-of-week field lists no values"
	}
	if s.Dom&values == 0 {
		return "the day-of-month field lists no values"
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
				return ""
			}
		}
	}
	return "no month has that day"
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
	if s.loc == time.UTC {
		n = s.nextWall(t.UTC())
	} else {
		n = s.nextInZone(t)
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

// wallClock returns the wall-clock reading of t in loc as a UTC time.
func wallClock(t time.Time, loc *time.Location) time.Time {
	_, off := t.In(loc).Zone()
	return time.Unix(t.Unix()+int64(off), int64(t.Nanosecond())).UTC()
}

// wallAt is the wall reading u (Unix seconds of the reading taken as UTC)
// less a nanosecond, so that nextWall from it finds matches at u or later.
func wallAt(u int64) time.Time {
	return time.Unix(u, 0).UTC().Add(-time.Nanosecond)
}

// period is a span of constant offset in a zone, as nextInZone sees it under
// the schedule's policies. Wall readings are Unix seconds of the reading
// taken as UTC.
type period struct {
	start, end time.Time // end is zero if the offset never changes again
	off        int64
	// lo and hi bound the readings whose instants in this period the
	// repeat policy keeps: [lo, hi). Without a start, the period reaches back
	// to the beginning of time and lo is unused; without an end, hi is
	// math.MaxInt64.
	lo, hi int64
	// gapLo and gapHi bound the readings skipped just before start: [gapLo,
	// gapHi), empty if the offset did not grow there.
	gapLo, gapHi int64
}

// zoneBounds is t.ZoneBounds, except that the end, if any, is after t. Past a
// zone's last listed transition Go computes periods from the zone's rule, and
// in a leap year it ends the year's last period a day early, before t for an
// instant in that day (golang/go#81583). The offset does not change there, so
// the period runs on to the end of the one a day later.
func zoneBounds(t time.Time) (start, end time.Time) {
	start, end = t.ZoneBounds()
	if !end.IsZero() && !end.After(t) {
		_, end = t.Add(24 * time.Hour).ZoneBounds()
	}
	return start, end
}

// periodOf returns the period that holds t, which is in s.loc.
func (s *specSchedule) periodOf(t time.Time) period {
	start, end := zoneBounds(t)
	_, o := t.Zone()
	p := period{start: start, end: end, off: int64(o), hi: math.MaxInt64}
	if !start.IsZero() {
		p.lo = start.Unix() + p.off
		_, po := start.Add(-time.Nanosecond).Zone()
		switch prevOff := int64(po); {
		case prevOff > p.off && s.repeat == RepeatOnceFirst:
			// The readings up to start+prevOff were read in the previous
			// period already: these are their second instants.
			p.lo = start.Unix() + prevOff
		case prevOff < p.off:
			p.gapLo, p.gapHi = start.Unix()+prevOff, start.Unix()+p.off
		}
	}
	if !end.IsZero() {
		p.hi = end.Unix() + p.off
		_, no := end.Zone()
		if nextOff := int64(no); nextOff < p.off && s.repeat == RepeatOnceLast {
			// The readings from end+nextOff will be read again in the next
			// period: these are their first instants.
			p.hi = end.Unix() + nextOff
		}
	}
	return p
}

// nextInZone walks the zone's periods of constant offset, from t's onwards.
// Within a period wall time and real time advance together, so the instants
// kept there are the matching readings of one range, shifted by the offset;
// the repeat policy only narrows the range, dropping the copies of repeated
// readings it does not want. Under GapShift, a period that follows a gap
// holding a matching reading is due at its first instant. The walk visits
// instants in order, so the first one found is the answer, and it costs one
// field search per period, never one per matching wall time.
func (s *specSchedule) nextInZone(t time.Time) time.Time {
	cur := t.In(s.loc)
	from := wallClock(cur, s.loc) // exclusive: t itself is not due
	for i := range maxPeriods {
		p := s.periodOf(cur)
		if i > 0 {
			// cur starts the period, except in one zoneBounds mended, and
			// is due itself if its reading matches.
			if s.gap == GapShift && p.gapLo < p.gapHi && p.start.Equal(cur) {
				if nw := s.nextWall(wallAt(p.gapLo)); !nw.IsZero() && nw.Unix() < p.gapHi {
					return cur
				}
			}
			from = wallClock(cur, s.loc).Add(-time.Nanosecond)
		}
		if !p.start.IsZero() && from.Before(wallAt(p.lo)) {
			// Under RepeatOnceFirst the readings below lo are second copies,
			// due in their first: skip them, however many match.
			from = wallAt(p.lo)
		}
		nw := s.nextWall(from)
		if nw.IsZero() {
			return time.Time{}
		}
		if nw.Unix() < p.hi {
			return time.Unix(nw.Unix()-p.off, 0).In(s.loc)
		}
		if !p.end.After(cur) || p.end.Unix() > maxUnix {
			// Nothing can be due past maxUnix. (Without an end, hi was
			// unbounded and the match was returned above.)
			return time.Time{}
		}
		cur = p.end
	}
	return time.Time{}
}
