package cron_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/cron"
)

// TestDST pins the daylight-saving semantics in real zones (2026 rules):
//   - America/New_York: 2026-03-08 02:00 EST → 03:00 EDT; 2026-11-01 02:00 EDT → 01:00 EST.
//   - Europe/Berlin: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET.
//   - Australia/Lord_Howe, a 30-minute shift: 2026-04-05 02:00 +11 → 01:30 +1030;
//     2026-10-04 02:00 +1030 → 02:30 +11.
//
// Fixed-hour specs run a skipped wall time once at the end of the gap and a
// repeated wall time once, at its first instant; all-hours specs follow real
// time.
func TestDST(t *testing.T) {
	tests := []struct {
		name  string
		zone  string
		spec  string
		after string // exclusive
		until string // inclusive
		want  []string
	}{
		// America/New_York
		{"NY fixed, in the gap, runs at the transition", "America/New_York", "30 2 * * *",
			"2026-03-07T00:00:00-05:00", "2026-03-09T23:00:00-04:00",
			[]string{"2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"NY fixed, several gap times run once", "America/New_York", "*/20 2 * * *",
			"2026-03-08T00:00:00-05:00", "2026-03-09T02:30:00-04:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00", "2026-03-09T02:20:00-04:00"}},
		{"NY fixed, around the gap", "America/New_York", "59 1,3 * * *",
			"2026-03-08T00:00:00-05:00", "2026-03-08T12:00:00-04:00",
			[]string{"2026-03-08T01:59:00-05:00", "2026-03-08T03:59:00-04:00"}},
		{"NY fixed, gap time asked at the transition", "America/New_York", "30 2 * * *",
			"2026-03-08T03:00:00-04:00", "2026-03-09T23:00:00-04:00",
			[]string{"2026-03-09T02:30:00-04:00"}},
		{"NY fixed, repeated time runs once, first copy", "America/New_York", "30 1 * * *",
			"2026-10-31T00:00:00-04:00", "2026-11-02T23:00:00-05:00",
			[]string{"2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"NY fixed, repeated hour runs once", "America/New_York", "*/20 1 * * *",
			"2026-11-01T00:00:00-04:00", "2026-11-01T12:00:00-05:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:20:00-04:00", "2026-11-01T01:40:00-04:00"}},
		{"NY fixed, after in the second copy", "America/New_York", "30 1,2 * * *",
			"2026-11-01T01:10:00-05:00", "2026-11-02T12:00:00-05:00",
			[]string{"2026-11-01T02:30:00-05:00", "2026-11-02T01:30:00-05:00", "2026-11-02T02:30:00-05:00"}},
		{"NY fixed, after in the first copy past the time", "America/New_York", "45 1 * * *",
			"2026-11-01T01:50:00-04:00", "2026-11-02T12:00:00-05:00",
			[]string{"2026-11-02T01:45:00-05:00"}},
		{"NY fixed, after in the first copy before the time", "America/New_York", "45 1 * * *",
			"2026-11-01T01:40:00-04:00", "2026-11-02T12:00:00-05:00",
			[]string{"2026-11-01T01:45:00-04:00", "2026-11-02T01:45:00-05:00"}},
		{"NY interval, both copies of the repeated hour", "America/New_York", "*/30 * * * *",
			"2026-11-01T00:40:00-04:00", "2026-11-01T02:30:00-05:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00", "2026-11-01T02:30:00-05:00"}},
		{"NY interval, after in the second copy", "America/New_York", "*/30 * * * *",
			"2026-11-01T01:10:00-05:00", "2026-11-01T02:00:00-05:00",
			[]string{"2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"}},
		{"NY interval, the gap hour does not run", "America/New_York", "*/30 * * * *",
			"2026-03-08T01:10:00-05:00", "2026-03-08T04:00:00-04:00",
			[]string{"2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00", "2026-03-08T04:00:00-04:00"}},
		{"NY @hourly follows real time", "America/New_York", "@hourly",
			"2026-11-01T00:30:00-04:00", "2026-11-01T02:00:00-05:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"}},
		{"NY interval with a seconds field", "America/New_York", "30 59 * * * *",
			"2026-03-08T00:00:00-05:00", "2026-03-08T04:00:00-04:00",
			[]string{"2026-03-08T00:59:30-05:00", "2026-03-08T01:59:30-05:00", "2026-03-08T03:59:30-04:00"}},
		{"NY @every follows real time", "America/New_York", "@every 1h",
			"2026-11-01T00:30:00-04:00", "2026-11-01T02:00:00-05:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"}},

		// Europe/Berlin
		{"Berlin fixed, in the gap", "Europe/Berlin", "30 2 * * *",
			"2026-03-28T12:00:00+01:00", "2026-03-30T12:00:00+02:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"Berlin fixed, repeated time runs once", "Europe/Berlin", "30 2 * * *",
			"2026-10-24T12:00:00+02:00", "2026-10-26T12:00:00+01:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"Berlin fixed, after in the second copy", "Europe/Berlin", "0 2,3 * * *",
			"2026-10-25T02:15:00+01:00", "2026-10-26T12:00:00+01:00",
			[]string{"2026-10-25T03:00:00+01:00", "2026-10-26T02:00:00+01:00", "2026-10-26T03:00:00+01:00"}},
		{"Berlin interval, both copies", "Europe/Berlin", "*/30 * * * *",
			"2026-10-25T01:45:00+02:00", "2026-10-25T03:00:00+01:00",
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00", "2026-10-25T03:00:00+01:00"}},
		{"Berlin interval, gap", "Europe/Berlin", "0 * * * *",
			"2026-03-29T00:30:00+01:00", "2026-03-29T04:00:00+02:00",
			[]string{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"}},

		// Australia/Lord_Howe: the gap and the repetition are 30 minutes.
		{"Lord Howe fixed, in the gap", "Australia/Lord_Howe", "15 2 * * *",
			"2026-10-03T00:00:00+10:30", "2026-10-05T12:00:00+11:00",
			[]string{"2026-10-03T02:15:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
		{"Lord Howe fixed, gap start and after", "Australia/Lord_Howe", "0,30 2 * * *",
			"2026-10-04T00:00:00+10:30", "2026-10-04T12:00:00+11:00",
			[]string{"2026-10-04T02:30:00+11:00"}},
		{"Lord Howe fixed, repeated time runs once", "Australia/Lord_Howe", "45 1 * * *",
			"2026-04-04T00:00:00+11:00", "2026-04-06T12:00:00+10:30",
			[]string{"2026-04-04T01:45:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
		{"Lord Howe fixed, unrepeated half of the hour", "Australia/Lord_Howe", "15 1 * * *",
			"2026-04-04T12:00:00+11:00", "2026-04-05T12:00:00+10:30",
			[]string{"2026-04-05T01:15:00+11:00"}},
		{"Lord Howe fixed, after in the second copy, later time", "Australia/Lord_Howe", "0 2 * * *",
			"2026-04-05T01:35:00+10:30", "2026-04-06T12:00:00+10:30",
			[]string{"2026-04-05T02:00:00+10:30", "2026-04-06T02:00:00+10:30"}},
		{"Lord Howe fixed, after in the second copy, repeated time", "Australia/Lord_Howe", "45 1 * * *",
			"2026-04-05T01:35:00+10:30", "2026-04-06T12:00:00+10:30",
			[]string{"2026-04-06T01:45:00+10:30"}},
		{"Lord Howe interval, both copies", "Australia/Lord_Howe", "*/15 * * * *",
			"2026-04-05T01:10:00+11:00", "2026-04-05T02:15:00+10:30",
			[]string{"2026-04-05T01:15:00+11:00", "2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T01:30:00+10:30", "2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30", "2026-04-05T02:15:00+10:30"}},
		{"Lord Howe interval, after in the second copy", "Australia/Lord_Howe", "*/15 * * * *",
			"2026-04-05T01:35:00+10:30", "2026-04-05T02:00:00+10:30",
			[]string{"2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30"}},
		{"Lord Howe interval, gap", "Australia/Lord_Howe", "*/15 * * * *",
			"2026-10-04T01:40:00+10:30", "2026-10-04T03:00:00+11:00",
			[]string{"2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00", "2026-10-04T03:00:00+11:00"}},
		{"Lord Howe hourly, gap", "Australia/Lord_Howe", "@hourly",
			"2026-10-04T00:30:00+10:30", "2026-10-04T04:00:00+11:00",
			[]string{"2026-10-04T01:00:00+10:30", "2026-10-04T03:00:00+11:00", "2026-10-04T04:00:00+11:00"}},

		// Midnight does not exist: Sao Paulo, 2018-11-04 00:00 -03 → 01:00 -02.
		{"Sao Paulo @daily, midnight in the gap", "America/Sao_Paulo", "@daily",
			"2018-11-03T12:00:00-03:00", "2018-11-05T12:00:00-02:00",
			[]string{"2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"}},
		// A whole day skipped: Apia went from 2011-12-29 to 2011-12-31.
		{"Apia, skipped day runs once at the transition", "Pacific/Apia", "0 9,12 * * *",
			"2011-12-29T10:00:00-10:00", "2011-12-31T23:00:00+14:00",
			[]string{"2011-12-29T12:00:00-10:00", "2011-12-31T00:00:00+14:00", "2011-12-31T09:00:00+14:00", "2011-12-31T12:00:00+14:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustLoad(t, tt.zone)
			s := mustParse(t, tt.spec, loc)
			got := cron.Expand(s, mustTime(t, tt.after), mustTime(t, tt.until), 100)
			if diff := cmp.Diff(tt.want, format(got, loc)); diff != "" {
				t.Errorf("Parse(%q, %s) in (%s, %s] (-want +got):\n%s", tt.spec, tt.zone, tt.after, tt.until, diff)
			}
		})
	}
}

// TestDSTOracle compares Next with a brute-force oracle that walks real time
// minute by minute around every transition of some zones with odd rules.
func TestDSTOracle(t *testing.T) {
	zones := []struct {
		name string
		year int
	}{
		{"America/New_York", 2026},
		{"Europe/Berlin", 2026},
		{"Australia/Lord_Howe", 2026},
		{"America/Sao_Paulo", 2018}, // midnight transitions
		{"America/Havana", 2026},    // midnight transitions
		{"America/Santiago", 2026},  // 24:00 transitions
		{"Pacific/Apia", 2011},      // a skipped day
		{"Antarctica/Troll", 2026},  // a 2-hour shift
		{"Europe/Dublin", 2026},     // negative DST
		{"Africa/Casablanca", 2026}, // Ramadan transitions
		{"Pacific/Chatham", 2026},   // +12:45, transitions at 2:45
		{"America/St_Johns", 2026},  // -03:30
	}
	fixed := []string{"30 2 * * *", "*/20 1-3 * * *", "0 0 * * *", "15,45 0-2 * * *", "59 23 * * *", "0 12 * * *", "45 2 * * *", "0 1 * * *"}
	interval := []string{"*/15 * * * *", "0 * * * *", "7,37 * * * *", "*/30 * * * 0", "59 * * * *"}
	for _, z := range zones {
		loc := mustLoad(t, z.name)
		for _, tr := range transitions(loc, z.year) {
			after, until := tr.Add(-26*time.Hour), tr.Add(26*time.Hour)
			for _, spec := range append(fixed, interval...) {
				t.Run(fmt.Sprintf("%s/%s/%s", z.name, tr.UTC().Format(time.RFC3339), spec), func(t *testing.T) {
					s := mustParse(t, spec, loc)
					utc := mustParse(t, spec, time.UTC)
					isFixed := contains(fixed, spec)
					want := oracle(utc, loc, after, until, isFixed)
					got := cron.Expand(s, after, until, 1000)
					if diff := cmp.Diff(format(want, loc), format(got, loc)); diff != "" {
						t.Errorf("(-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// transitions lists the instants in year at which loc's offset changes.
func transitions(loc *time.Location, year int) []time.Time {
	var out []time.Time
	t := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).In(loc)
	endOfYear := time.Date(year+1, 1, 1, 0, 0, 0, 0, time.UTC)
	for {
		_, end := t.ZoneBounds()
		if end.IsZero() || !end.Before(endOfYear) {
			return out
		}
		_, before := end.Add(-time.Second).Zone()
		if _, after := end.Zone(); after != before {
			out = append(out, end)
		}
		t = end
	}
}

// wallOf is the wall-clock reading of x in loc, as a UTC time.
func wallOf(x time.Time, loc *time.Location) time.Time {
	l := x.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
}

// oracle returns the occurrences in (after, until] by brute force over
// minute-aligned instants. utc is the spec evaluated in UTC, which tells
// whether a wall time matches.
func oracle(utc cron.Schedule, loc *time.Location, after, until time.Time, fixed bool) []time.Time {
	matches := func(w time.Time) bool { return utc.Next(w.Add(-time.Second)).Equal(w) }
	// Real time, widened by two days so every wall time of the window is seen.
	var instants, walls []time.Time
	for x := after.Add(-48 * time.Hour).Truncate(time.Minute); !x.After(until.Add(48 * time.Hour)); x = x.Add(time.Minute) {
		instants = append(instants, x)
		walls = append(walls, wallOf(x, loc))
	}
	var out []time.Time
	add := func(x time.Time) {
		if x.After(after) && !x.After(until) && (len(out) == 0 || x.After(out[len(out)-1])) {
			out = append(out, x)
		}
	}
	if !fixed {
		for i, x := range instants {
			if matches(walls[i]) {
				add(x)
			}
		}
		return out
	}
	// Fixed-hour: each matching wall time maps to the first instant whose
	// wall reading is at least that wall time: itself if it exists (its
	// first copy), else the end of the gap.
	i := 0
	for w := wallOf(after, loc).Add(-24 * time.Hour).Truncate(time.Minute); !w.After(wallOf(until, loc).Add(24 * time.Hour)); w = w.Add(time.Minute) {
		if !matches(w) {
			continue
		}
		for i < len(walls) && walls[i].Before(w) {
			i++
		}
		if i < len(walls) {
			add(instants[i])
		}
	}
	return out
}
