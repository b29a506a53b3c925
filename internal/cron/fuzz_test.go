package cron

import (
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

func FuzzParse(f *testing.F) {
	f.Add("30 2 * * *", "America/New_York", uint8(0), int64(1772900000), uint32(0))
	f.Add("*/15 * * * *", "", uint8(3), int64(1775300000), uint32(5))
	f.Add("0 30 1 * * *", "", uint8(9), int64(1792800000), uint32(0))
	f.Add("@every 90s", "Europe/Berlin", uint8(0), int64(-1), uint32(999999999))
	f.Add("@daily", "Local", uint8(4), int64(1540000000), uint32(0))
	f.Add("0 0 29 2 *", "", uint8(0), int64(4000000000), uint32(0))
	f.Add("0 0 30 2 *", "", uint8(0), int64(0), uint32(0))
	f.Add("TZ=", "", uint8(0), int64(0), uint32(0))
	f.Add("CRON_TZ=Europe/Berlin 0 * * * *", "", uint8(0), int64(0), uint32(0))
	f.Add("* * 0 * * *", "", uint8(8), int64(1325160000), uint32(0))
	f.Add("0 0 * * 0", "", uint8(5), int64(253402300000), uint32(0))
	f.Fuzz(func(t *testing.T, spec, zone string, zi uint8, sec int64, nsec uint32) {
		loc, err := LoadLocation(zone)
		if err != nil {
			loc, err = LoadLocation(fuzzZones[int(zi)%len(fuzzZones)])
			if err != nil {
				t.Fatal(err)
			}
		}
		s, err := Parse(spec, Options{Location: loc})
		if err != nil {
			return
		}
		t0 := time.Unix(sec, int64(nsec%1e9))
		prev := t0
		for range 8 {
			n := s.Next(prev)
			if n.IsZero() {
				return
			}
			if !n.After(prev) {
				t.Fatalf("Parse(%q, %s).Next(%v) = %v, not after its input", spec, loc, prev, n)
			}
			// Nothing is due in (prev, n), so asking just before n gives n.
			if before := n.Add(-time.Nanosecond); before.After(prev) {
				if got := s.Next(before); !got.Equal(n) {
					t.Fatalf("Parse(%q, %s): Next(%v) = %v, but Next(%v) = %v", spec, loc, prev, n, before, got)
				}
			}
			checkDue(t, s, n)
			id := OccurrenceID("job@x", n)
			job, due, err := ParseOccurrenceID(id)
			if err != nil || job != "job@x" || !due.Equal(n) {
				t.Fatalf("ParseOccurrenceID(%q) = %q, %v, %v; want job@x, %v", id, job, due, err, n)
			}
			prev = n
		}
	})
}

// checkDue fails unless n is an instant the schedule may be due at: a
// multiple of the period for @every; otherwise a matching wall time or, for
// fixed-hour specs, the end of a gap.
func checkDue(t *testing.T, s Schedule, n time.Time) {
	t.Helper()
	switch s := s.(type) {
	case everySchedule:
		if n.Unix()%s.period != 0 || n.Nanosecond() != 0 {
			t.Fatalf("@every %ds: %v is not a multiple of the period", s.period, n)
		}
	case *specSchedule:
		w, _ := wallClock(n, s.loc)
		if got := s.nextWall(w.Add(-time.Nanosecond)); got.Equal(w) {
			return
		}
		if start, _ := n.In(s.loc).ZoneBounds(); !s.realTime && start.Equal(n) {
			return
		}
		t.Fatalf("%+v: %v (wall %v) matches neither the spec nor a gap", s.wall, n.In(s.loc), w)
	default:
		t.Fatalf("unexpected schedule type %T", s)
	}
}
