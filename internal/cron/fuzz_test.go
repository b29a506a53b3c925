package cron

import (
	"math"
	"testing"
	"time"
)

// fuzzZones are zones with unusual transitions: 30-minute and 2-hour shifts,
// negative DST, midnight transitions, a skipped day, odd offsets.
var fuzzZones = []string{
	"UTC",
	"America/New_York",
	"Europe/Berlin",
	"Australia/Lord_Howe",
	"America/Sao_Paulo",
	"America/Havana",
	"America/Santiago",
	"Asia/Beirut",
	"Pacific/Apia",
	"Europe/Dublin",
	"Africa/Casablanca",
	"Antarctica/Troll",
	"Pacific/Chatham",
	"America/St_Johns",
	"Asia/Kolkata",
	"Etc/GMT+12",
}

// policies are every combination of the daylight-saving policies.
var policies = func() []Options {
	var out []Options
	for _, g := range []GapPolicy{GapShift, GapSkip} {
		for _, r := range []RepeatPolicy{RepeatOnceFirst, RepeatOnceLast, RepeatBoth} {
			out = append(out, Options{Gap: g, Repeat: r})
		}
	}
	return out
}()

// FuzzParse parses spec with seed under every policy and follows a few
// occurrences from an instant, or, when near is set, from around the zone's
// next transition after it. What Resolve shows must be what Parse evaluates.
func FuzzParse(f *testing.F) {
	f.Add("30 2 * * *", "America/New_York", "", uint8(0), int64(1772900000), uint32(0), false)
	f.Add("*/15 * * * *", "", "", uint8(3), int64(1775300000), uint32(5), false)
	f.Add("0 30 1 * * *", "", "", uint8(9), int64(1792800000), uint32(0), false)
	f.Add("@every 90s", "Europe/Berlin", "", uint8(0), int64(-1), uint32(999999999), false)
	f.Add("@daily", "Local", "", uint8(4), int64(1540000000), uint32(0), false)
	f.Add("0 0 29 2 *", "", "", uint8(0), int64(4000000000), uint32(0), false)
	f.Add("0 0 30 2 *", "", "", uint8(0), int64(0), uint32(0), false)
	f.Add("TZ=", "", "", uint8(0), int64(0), uint32(0), false)
	f.Add("CRON_TZ=Europe/Berlin 0 * * * *", "", "", uint8(0), int64(0), uint32(0), false)
	f.Add("* * 0 * * *", "", "", uint8(8), int64(1325160000), uint32(0), false)
	f.Add("0 0 * * 0", "", "", uint8(5), int64(253402300000), uint32(0), false)
	f.Add("*/15 2 * * *", "America/New_York", "", uint8(0), int64(1772000000), uint32(7000), true)
	f.Add("* * 1 * * *", "America/New_York", "", uint8(0), int64(1790000000), uint32(3000), true)
	f.Add("*/10 0 * * *", "America/Havana", "", uint8(0), int64(1790000000), uint32(1000), true)
	f.Add("30 23 * * *", "America/Santiago", "", uint8(0), int64(1774000000), uint32(4000), true)
	f.Add("45 1 * * *", "Australia/Lord_Howe", "", uint8(0), int64(1774000000), uint32(2000), true)
	f.Add("H H * * *", "Europe/Berlin", "db-backup", uint8(0), int64(1792800000), uint32(0), true)
	f.Add("H/15 H(0-3) * * *", "America/New_York", "report", uint8(0), int64(1772900000), uint32(0), true)
	f.Add("0 H H/3 H(jan-mar) *", "", "ops@team", uint8(0), int64(1772900000), uint32(0), false)
	f.Add("H * * * *", "", "", uint8(0), int64(0), uint32(0), false)
	f.Add("0 9 * * THU", "", "x", uint8(0), int64(0), uint32(0), false)
	f.Fuzz(func(t *testing.T, spec, zone, seed string, zi uint8, sec int64, nsec uint32, near bool) {
		loc, err := LoadLocation(zone)
		if err != nil {
			loc, err = LoadLocation(fuzzZones[int(zi)%len(fuzzZones)])
			if err != nil {
				t.Fatal(err)
			}
		}
		t0 := time.Unix(sec, int64(nsec%1e9))
		if _, end := t0.In(loc).ZoneBounds(); near && !end.IsZero() {
			// Within three hours either side of the transition, where the
			// policies differ.
			t0 = end.Add(time.Duration(nsec%(6*3600))*time.Second - 3*time.Hour)
		}
		for _, o := range policies {
			o.Location, o.Seed = loc, seed
			s, err := Parse(spec, o)
			if err != nil {
				return
			}
			checkOccurrences(t, s, t0)

			resolved, err := Resolve(spec, seed)
			if err != nil {
				t.Fatalf("Parse(%q, seed %q) succeeds, Resolve fails: %v", spec, seed, err)
			}
			o.Seed = ""
			r, err := Parse(resolved, o)
			if err != nil {
				t.Fatalf("Parse(%q, seed %q) succeeds, Parse(%q) fails: %v", spec, seed, resolved, err)
			}
			if a, b := s.Next(t0), r.Next(t0); !a.Equal(b) {
				t.Fatalf("Parse(%q, seed %q).Next(%v) = %v, Parse(%q).Next = %v", spec, seed, t0, a, resolved, b)
			}
			if resolved == spec {
				// Without H, the seed does not matter.
				if _, err := Parse(spec, o); err != nil {
					t.Fatalf("Parse(%q, seed %q) succeeds, without the seed it fails: %v", spec, seed, err)
				}
			}
		}
	})
}

// checkOccurrences follows a few occurrences of s from t0 and checks them.
func checkOccurrences(t *testing.T, s Schedule, t0 time.Time) {
	t.Helper()
	prev := t0
	var readings []time.Time
	for range 8 {
		n := s.Next(prev)
		if n.IsZero() {
			return
		}
		if !n.After(prev) {
			t.Fatalf("%v.Next(%v) = %v, not after its input", s, prev, n)
		}
		// Nothing is due in (prev, n), so asking just before n gives n.
		if before := n.Add(-time.Nanosecond); before.After(prev) {
			if got := s.Next(before); !got.Equal(n) {
				t.Fatalf("%v: Next(%v) = %v, but Next(%v) = %v", s, prev, n, before, got)
			}
		}
		checkDue(t, s, n)
		if ss, ok := s.(*specSchedule); ok && ss.repeat != RepeatBoth {
			w := wallClock(n, ss.loc)
			for _, r := range readings {
				if r.Equal(w) {
					t.Fatalf("%v: wall time %v is due twice", s, w)
				}
			}
			readings = append(readings, w)
		}
		id := OccurrenceID("job@x", n)
		job, due, err := ParseOccurrenceID(id)
		if err != nil || job != "job@x" || !due.Equal(n) {
			t.Fatalf("ParseOccurrenceID(%q) = %q, %v, %v; want job@x, %v", id, job, due, err, n)
		}
		prev = n
	}
}

// checkDue fails unless n is an instant the schedule may be due at: a
// multiple of the period for @every; otherwise an instant of a matching wall
// time that the repeat policy keeps or, under GapShift, the end of a gap
// that holds a matching wall time.
func checkDue(t *testing.T, s Schedule, n time.Time) {
	t.Helper()
	switch s := s.(type) {
	case everySchedule:
		if n.Unix()%s.period != 0 || n.Nanosecond() != 0 {
			t.Fatalf("@every %ds: %v is not a multiple of the period", s.period, n)
		}
	case *specSchedule:
		if n.Nanosecond() != 0 {
			t.Fatalf("%v: %v is not a whole second", s, n)
		}
		w := wallClock(n, s.loc)
		if s.nextWall(w.Add(-time.Nanosecond)).Equal(w) {
			checkCopies(t, s, n, instantsOf(w.Unix(), s.loc))
			return
		}
		if s.gap == GapShift && endsGapWithMatch(s, n) {
			return
		}
		t.Fatalf("%v: %v (wall %v) matches neither the spec nor a gap", s, n.In(s.loc), w)
	default:
		t.Fatalf("unexpected schedule type %T", s)
	}
}

// checkCopies checks that n, due at a matching wall time whose instants are
// copies, is the copy the repeat policy keeps, and that the other copy is
// due exactly when the policy keeps both.
func checkCopies(t *testing.T, s *specSchedule, n time.Time, copies []time.Time) {
	t.Helper()
	switch len(copies) {
	case 0:
		t.Fatalf("%v: %v has no instants in its own zone", s, n)
	case 1:
		if !copies[0].Equal(n) {
			t.Fatalf("%v: due at %v, but its wall time is at %v", s, n, copies[0])
		}
		return
	case 2:
	default:
		t.Fatalf("%v: %v reads the same as %d instants", s, n, len(copies))
	}
	var other time.Time
	switch {
	case n.Equal(copies[0]):
		if s.repeat == RepeatOnceLast {
			t.Fatalf("%v: due at the first copy %v", s, n.In(s.loc))
		}
		other = copies[1]
	case n.Equal(copies[1]):
		if s.repeat == RepeatOnceFirst {
			t.Fatalf("%v: due at the second copy %v", s, n.In(s.loc))
		}
		other = copies[0]
	default:
		t.Fatalf("%v: %v is neither copy %v", s, n, copies)
	}
	if otherDue := s.Next(other.Add(-time.Nanosecond)).Equal(other); otherDue != (s.repeat == RepeatBoth) {
		t.Fatalf("%v: due at %v; at the other copy %v: %v", s, n.In(s.loc), other.In(s.loc), otherDue)
	}
}

// instantsOf returns, in order, the instants whose wall reading in loc is
// w (Unix seconds of the reading taken as UTC): one, none in a gap, two in
// a repeated range. It tries every offset in force within a day and a half
// of w, so it relies on nothing the schedule computes.
func instantsOf(w int64, loc *time.Location) []time.Time {
	var out []time.Time
	at := time.Unix(w-36*3600, 0).In(loc)
	for range 16 {
		start, end := zoneBounds(at)
		_, off := at.Zone()
		x := time.Unix(w-int64(off), 0)
		if !x.Before(start) && (end.IsZero() || x.Before(end)) {
			if len(out) == 0 || !out[len(out)-1].Equal(x) {
				out = append(out, x)
			}
		}
		if end.IsZero() || end.Unix() > w+36*3600 {
			break
		}
		at = end
	}
	return out
}

// endsGapWithMatch reports whether n is the first instant after a gap
// that holds a wall time matching s.
func endsGapWithMatch(s *specSchedule, n time.Time) bool {
	start, _ := n.In(s.loc).ZoneBounds()
	if !start.Equal(n) {
		return false
	}
	_, prevOff := n.Add(-time.Nanosecond).In(s.loc).Zone()
	_, off := n.In(s.loc).Zone()
	if prevOff >= off {
		return false
	}
	lo, hi := n.Unix()+int64(prevOff), n.Unix()+int64(off)
	m := s.nextWall(time.Unix(lo, 0).UTC().Add(-time.Nanosecond))
	return !m.IsZero() && m.Unix() < hi && len(instantsOf(m.Unix(), s.loc)) == 0
}

// FuzzUnion follows the union of two specs in Berlin, bounded on either side
// or not, and checks each occurrence against the members.
func FuzzUnion(f *testing.F) {
	f.Add("0 */2 * * *", "0 */3 * * *", int64(1772400000), int32(0), int32(0))
	f.Add("30 2 * * *", "@every 90m", int64(1774700000), int32(3600), int32(86400))
	f.Add("* * * * *", "*/2 * * * *", int64(1792800000), int32(-60), int32(600))
	f.Add("0 0 29 2 *", "@yearly", int64(1772400000), int32(1), int32(-1))
	f.Fuzz(func(t *testing.T, a, b string, sec int64, startOff, endOff int32) {
		loc, err := LoadLocation("Europe/Berlin")
		if err != nil {
			t.Fatal(err)
		}
		sa, err := Parse(a, Options{Location: loc})
		if err != nil {
			return
		}
		sb, err := Parse(b, Options{Location: loc})
		if err != nil {
			return
		}
		t0 := time.Unix(sec, 0)
		var start, end time.Time
		if startOff != 0 {
			start = t0.Add(time.Duration(startOff) * time.Second)
		}
		if endOff != 0 {
			end = t0.Add(time.Duration(endOff) * time.Second)
		}
		u := Bounded(Union(sa, sb), start, end)
		prev := t0
		for range 8 {
			n := u.Next(prev)
			if n.IsZero() {
				return
			}
			if !n.After(prev) || (!start.IsZero() && n.Before(start)) || (!end.IsZero() && n.After(end)) {
				t.Fatalf("Next(%v) = %v, out of (%v, ...] or [%v, %v]", prev, n, prev, start, end)
			}
			from := prev
			if !start.IsZero() && from.Before(start) {
				from = start.Add(-time.Nanosecond)
			}
			na, nb := sa.Next(from), sb.Next(from)
			if !n.Equal(na) && !n.Equal(nb) {
				t.Fatalf("Next(%v) = %v, but the members give %v and %v", prev, n, na, nb)
			}
			if (!na.IsZero() && na.Before(n)) || (!nb.IsZero() && nb.Before(n)) {
				t.Fatalf("Next(%v) = %v skips %v or %v", prev, n, na, nb)
			}
			prev = n
		}
	})
}

// FuzzJitter checks that a jitter is a whole number of milliseconds in
// [0, max), the same every time.
func FuzzJitter(f *testing.F) {
	f.Add("db-backup@2026-03-08T07:00:00.000Z", int64(2*time.Minute))
	f.Add("", int64(0))
	f.Add("j@0001-01-01T00:00:00.000Z", int64(-1))
	f.Add("x", int64(1500*time.Microsecond))
	f.Add("y", int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, id string, max int64) {
		d := Jitter(id, time.Duration(max))
		if d != Jitter(id, time.Duration(max)) {
			t.Fatalf("Jitter(%q, %v) differs between calls", id, time.Duration(max))
		}
		if d < 0 || d%time.Millisecond != 0 || (max > 0 && d >= time.Duration(max)) || (max <= 0 && d != 0) {
			t.Fatalf("Jitter(%q, %v) = %v", id, time.Duration(max), d)
		}
	})
}

// FuzzParseInstant checks the occurrence id's fast instant reader against the definition it
// stands in for: time.Parse in occurrenceLayout, and the result formatting back to the same
// text. It accepts exactly what that accepts, as the same instant.
func FuzzParseInstant(f *testing.F) {
	for _, s := range []string{"2026-01-02T03:04:05.000Z", "0000-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z",
		"2024-02-29T12:00:00.000Z", "2026-02-29T12:00:00.000Z", "2026-01-02T24:00:00.000Z", "2026-01-02T3:04:05.000Z",
		"2026-13-02T03:04:05.000Z", "2026-01-02T03:04:60.000Z", "2026-01-02T03:04:05.000+", "2026-00-00T00:00:00.000Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ts string) {
		got, ok := parseInstant(ts)
		want, err := time.Parse(occurrenceLayout, ts)
		wantOK := err == nil && want.Format(occurrenceLayout) == ts
		if ok != wantOK || (ok && !got.Equal(want)) {
			t.Fatalf("parseInstant(%q) = %v, %v; time.Parse and Format say %v, %v (err %v)", ts, got, ok, want, wantOK, err)
		}
	})
}
