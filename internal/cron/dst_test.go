package cron_test

import (
	"fmt"
	"slices"
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

		// Go's zone bounds end a leap year's last period a day early past
		// the listed transitions; the walk must not take that for the next
		// offset change.
		{"Sydney interval, from the last day of 2040", "Australia/Sydney", "0 * * 5 *",
			"2040-12-31T23:00:00+11:00", "2041-05-01T01:00:00+10:00",
			[]string{"2041-05-01T00:00:00+10:00", "2041-05-01T01:00:00+10:00"}},
		{"Sydney fixed, from the last day of 2040", "Australia/Sydney", "0 0 1 5 *",
			"2040-12-31T23:00:00+11:00", "2041-05-01T01:00:00+10:00",
			[]string{"2041-05-01T00:00:00+10:00"}},

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

// TestDSTGapPolicies pins what each gap policy does with wall times that a
// spring-forward transition skips, in real zones over several years; the
// repeat policy must not matter there. Transitions (local wall times):
//   - America/New_York: 2025-03-09, 2026-03-08, 2027-03-14 02:00 → 03:00.
//   - Europe/Berlin: 2024-03-31, 2025-03-30 02:00 → 03:00.
//   - Australia/Lord_Howe: 2025-10-05, 2027-10-03 02:00 → 02:30.
//   - America/Havana: 2025-03-09, 2026-03-08 00:00 → 01:00, a whole midnight hour.
//   - America/Santiago: 2024-09-08, 2027-09-05 00:00 → 01:00, likewise.
//   - Australia/Sydney: 2025-10-05 02:00 → 03:00.
//   - Pacific/Auckland: 2023-09-24, 2024-09-29, 2025-09-28 02:00 → 03:00.
//   - Pacific/Apia: 2011-12-30 skipped entirely.
func TestDSTGapPolicies(t *testing.T) {
	tests := []struct {
		name        string
		zone        string
		spec        string
		after       string // exclusive
		until       string // inclusive
		shift, skip []string
	}{
		{"NY 2025, in the gap", "America/New_York", "30 2 * * *",
			"2025-03-08T00:00:00-05:00", "2025-03-10T23:00:00-04:00",
			[]string{"2025-03-08T02:30:00-05:00", "2025-03-09T03:00:00-04:00", "2025-03-10T02:30:00-04:00"},
			[]string{"2025-03-08T02:30:00-05:00", "2025-03-10T02:30:00-04:00"}},
		{"NY 2026, four wall times in one gap", "America/New_York", "*/15 2 * * *",
			"2026-03-08T00:00:00-05:00", "2026-03-09T02:30:00-04:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00", "2026-03-09T02:15:00-04:00", "2026-03-09T02:30:00-04:00"},
			[]string{"2026-03-09T02:00:00-04:00", "2026-03-09T02:15:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"NY 2027, gap time and the transition's own time", "America/New_York", "0 2,3 * * *",
			"2027-03-13T12:00:00-05:00", "2027-03-14T12:00:00-04:00",
			[]string{"2027-03-14T03:00:00-04:00"},
			[]string{"2027-03-14T03:00:00-04:00"}},
		{"Berlin 2024", "Europe/Berlin", "30 2 * * *",
			"2024-03-30T12:00:00+01:00", "2024-04-01T12:00:00+02:00",
			[]string{"2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"},
			[]string{"2024-04-01T02:30:00+02:00"}},
		{"Berlin 2025, Sundays", "Europe/Berlin", "0,30 2 * * 0",
			"2025-03-23T00:00:00+01:00", "2025-04-06T12:00:00+02:00",
			[]string{"2025-03-23T02:00:00+01:00", "2025-03-23T02:30:00+01:00", "2025-03-30T03:00:00+02:00", "2025-04-06T02:00:00+02:00", "2025-04-06T02:30:00+02:00"},
			[]string{"2025-03-23T02:00:00+01:00", "2025-03-23T02:30:00+01:00", "2025-04-06T02:00:00+02:00", "2025-04-06T02:30:00+02:00"}},
		{"Lord Howe 2025, 30-minute gap", "Australia/Lord_Howe", "10 2 * * *",
			"2025-10-04T00:00:00+10:30", "2025-10-06T12:00:00+11:00",
			[]string{"2025-10-04T02:10:00+10:30", "2025-10-05T02:30:00+11:00", "2025-10-06T02:10:00+11:00"},
			[]string{"2025-10-04T02:10:00+10:30", "2025-10-06T02:10:00+11:00"}},
		{"Lord Howe 2027, half the hour in the gap", "Australia/Lord_Howe", "*/15 2 * * *",
			"2027-10-03T00:00:00+10:30", "2027-10-03T03:00:00+11:00",
			[]string{"2027-10-03T02:30:00+11:00", "2027-10-03T02:45:00+11:00"},
			[]string{"2027-10-03T02:30:00+11:00", "2027-10-03T02:45:00+11:00"}},
		{"Havana 2025, midnight skipped", "America/Havana", "@daily",
			"2025-03-08T12:00:00-05:00", "2025-03-10T12:00:00-04:00",
			[]string{"2025-03-09T01:00:00-04:00", "2025-03-10T00:00:00-04:00"},
			[]string{"2025-03-10T00:00:00-04:00"}},
		{"Havana 2026, the whole midnight hour", "America/Havana", "*/20 0 * * *",
			"2026-03-07T12:00:00-05:00", "2026-03-09T00:40:00-04:00",
			[]string{"2026-03-08T01:00:00-04:00", "2026-03-09T00:00:00-04:00", "2026-03-09T00:20:00-04:00", "2026-03-09T00:40:00-04:00"},
			[]string{"2026-03-09T00:00:00-04:00", "2026-03-09T00:20:00-04:00", "2026-03-09T00:40:00-04:00"}},
		{"Santiago 2024, midnight skipped", "America/Santiago", "@midnight",
			"2024-09-07T12:00:00-04:00", "2024-09-09T12:00:00-03:00",
			[]string{"2024-09-08T01:00:00-03:00", "2024-09-09T00:00:00-03:00"},
			[]string{"2024-09-09T00:00:00-03:00"}},
		{"Santiago 2027, Sundays after midnight", "America/Santiago", "30 0 * * 0",
			"2027-08-28T12:00:00-04:00", "2027-09-13T12:00:00-03:00",
			[]string{"2027-08-29T00:30:00-04:00", "2027-09-05T01:00:00-03:00", "2027-09-12T00:30:00-03:00"},
			[]string{"2027-08-29T00:30:00-04:00", "2027-09-12T00:30:00-03:00"}},
		{"Sydney 2025", "Australia/Sydney", "45 2 * * *",
			"2025-10-04T00:00:00+10:00", "2025-10-06T12:00:00+11:00",
			[]string{"2025-10-04T02:45:00+10:00", "2025-10-05T03:00:00+11:00", "2025-10-06T02:45:00+11:00"},
			[]string{"2025-10-04T02:45:00+10:00", "2025-10-06T02:45:00+11:00"}},
		{"Auckland, 29 September over three years", "Pacific/Auckland", "0 2 29 9 *",
			"2023-09-01T00:00:00+12:00", "2025-10-01T00:00:00+13:00",
			[]string{"2023-09-29T02:00:00+13:00", "2024-09-29T03:00:00+13:00", "2025-09-29T02:00:00+13:00"},
			[]string{"2023-09-29T02:00:00+13:00", "2025-09-29T02:00:00+13:00"}},
		{"Apia, a skipped day", "Pacific/Apia", "0 9,12 * * *",
			"2011-12-29T10:00:00-10:00", "2011-12-31T23:00:00+14:00",
			[]string{"2011-12-29T12:00:00-10:00", "2011-12-31T00:00:00+14:00", "2011-12-31T09:00:00+14:00", "2011-12-31T12:00:00+14:00"},
			[]string{"2011-12-29T12:00:00-10:00", "2011-12-31T09:00:00+14:00", "2011-12-31T12:00:00+14:00"}},
		{"NY interval specs follow real time whatever the policy", "America/New_York", "*/30 * * * *",
			"2026-03-08T01:10:00-05:00", "2026-03-08T03:30:00-04:00",
			[]string{"2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"},
			[]string{"2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"}},
	}
	for _, tt := range tests {
		for _, gap := range []cron.GapPolicy{cron.GapShift, cron.GapSkip} {
			want := map[cron.GapPolicy][]string{cron.GapShift: tt.shift, cron.GapSkip: tt.skip}[gap]
			for _, repeat := range []cron.RepeatPolicy{cron.RepeatOnceFirst, cron.RepeatOnceLast, cron.RepeatBoth} {
				o := cron.Options{Location: mustLoad(t, tt.zone), Gap: gap, Repeat: repeat}
				t.Run(fmt.Sprintf("%s/%s/%s", tt.name, gap, repeat), func(t *testing.T) {
					checkExpand(t, tt.spec, o, tt.after, tt.until, want)
				})
			}
		}
	}
}

// TestDSTRepeatPolicies pins what each repeat policy does with wall times
// that a fall-back transition repeats, in real zones over several years; the
// gap policy must not matter there. Transitions (local wall times):
//   - America/New_York: 2024-11-03, 2025-11-02, 2026-11-01 02:00 → 01:00.
//   - Europe/Berlin: 2025-10-26, 2027-10-31 03:00 → 02:00.
//   - Australia/Lord_Howe: 2024-04-07 02:00 → 01:30.
//   - America/Havana: 2025-11-02 01:00 → 00:00, a whole midnight hour.
//   - America/Santiago: 2025-04-06, 2026-04-05 00:00 → 23:00 the day before.
//   - Australia/Sydney: 2025-04-06, 2026-04-05, 2027-04-04 03:00 → 02:00.
func TestDSTRepeatPolicies(t *testing.T) {
	tests := []struct {
		name                      string
		zone                      string
		spec                      string
		after                     string // exclusive
		until                     string // inclusive
		onceFirst, onceLast, both []string
	}{
		{"NY 2026", "America/New_York", "30 1 * * *",
			"2026-10-31T00:00:00-04:00", "2026-11-02T23:00:00-05:00",
			[]string{"2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"},
			[]string{"2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00"},
			[]string{"2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00"}},
		{"NY 2024, the repeated hour", "America/New_York", "*/20 1 * * *",
			"2024-11-03T00:00:00-04:00", "2024-11-03T12:00:00-05:00",
			[]string{"2024-11-03T01:00:00-04:00", "2024-11-03T01:20:00-04:00", "2024-11-03T01:40:00-04:00"},
			[]string{"2024-11-03T01:00:00-05:00", "2024-11-03T01:20:00-05:00", "2024-11-03T01:40:00-05:00"},
			[]string{"2024-11-03T01:00:00-04:00", "2024-11-03T01:20:00-04:00", "2024-11-03T01:40:00-04:00", "2024-11-03T01:00:00-05:00", "2024-11-03T01:20:00-05:00", "2024-11-03T01:40:00-05:00"}},
		{"NY 2025, after in the first copy: earlier wall times are still due again", "America/New_York", "*/20 1 * * *",
			"2025-11-02T01:30:00-04:00", "2025-11-02T12:00:00-05:00",
			[]string{"2025-11-02T01:40:00-04:00"},
			[]string{"2025-11-02T01:00:00-05:00", "2025-11-02T01:20:00-05:00", "2025-11-02T01:40:00-05:00"},
			[]string{"2025-11-02T01:40:00-04:00", "2025-11-02T01:00:00-05:00", "2025-11-02T01:20:00-05:00", "2025-11-02T01:40:00-05:00"}},
		{"NY 2025, after in the second copy", "America/New_York", "*/20 1,2 * * *",
			"2025-11-02T01:30:00-05:00", "2025-11-02T02:59:00-05:00",
			[]string{"2025-11-02T02:00:00-05:00", "2025-11-02T02:20:00-05:00", "2025-11-02T02:40:00-05:00"},
			[]string{"2025-11-02T01:40:00-05:00", "2025-11-02T02:00:00-05:00", "2025-11-02T02:20:00-05:00", "2025-11-02T02:40:00-05:00"},
			[]string{"2025-11-02T01:40:00-05:00", "2025-11-02T02:00:00-05:00", "2025-11-02T02:20:00-05:00", "2025-11-02T02:40:00-05:00"}},
		{"Berlin 2025", "Europe/Berlin", "30 2 * * *",
			"2025-10-25T12:00:00+02:00", "2025-10-27T12:00:00+01:00",
			[]string{"2025-10-26T02:30:00+02:00", "2025-10-27T02:30:00+01:00"},
			[]string{"2025-10-26T02:30:00+01:00", "2025-10-27T02:30:00+01:00"},
			[]string{"2025-10-26T02:30:00+02:00", "2025-10-26T02:30:00+01:00", "2025-10-27T02:30:00+01:00"}},
		{"Berlin 2027, the hour after", "Europe/Berlin", "0 2,3 * * *",
			"2027-10-30T12:00:00+02:00", "2027-10-31T12:00:00+01:00",
			[]string{"2027-10-31T02:00:00+02:00", "2027-10-31T03:00:00+01:00"},
			[]string{"2027-10-31T02:00:00+01:00", "2027-10-31T03:00:00+01:00"},
			[]string{"2027-10-31T02:00:00+02:00", "2027-10-31T02:00:00+01:00", "2027-10-31T03:00:00+01:00"}},
		{"Lord Howe 2024, half the hour repeated", "Australia/Lord_Howe", "*/15 1 * * *",
			"2024-04-07T00:00:00+11:00", "2024-04-07T03:00:00+10:30",
			[]string{"2024-04-07T01:00:00+11:00", "2024-04-07T01:15:00+11:00", "2024-04-07T01:30:00+11:00", "2024-04-07T01:45:00+11:00"},
			[]string{"2024-04-07T01:00:00+11:00", "2024-04-07T01:15:00+11:00", "2024-04-07T01:30:00+10:30", "2024-04-07T01:45:00+10:30"},
			[]string{"2024-04-07T01:00:00+11:00", "2024-04-07T01:15:00+11:00", "2024-04-07T01:30:00+11:00", "2024-04-07T01:45:00+11:00", "2024-04-07T01:30:00+10:30", "2024-04-07T01:45:00+10:30"}},
		{"Havana 2025, midnight repeated", "America/Havana", "@daily",
			"2025-11-01T12:00:00-04:00", "2025-11-03T12:00:00-05:00",
			[]string{"2025-11-02T00:00:00-04:00", "2025-11-03T00:00:00-05:00"},
			[]string{"2025-11-02T00:00:00-05:00", "2025-11-03T00:00:00-05:00"},
			[]string{"2025-11-02T00:00:00-04:00", "2025-11-02T00:00:00-05:00", "2025-11-03T00:00:00-05:00"}},
		{"Santiago 2025, the hour before midnight repeated", "America/Santiago", "0 0,23 * * *",
			"2025-04-05T12:00:00-03:00", "2025-04-06T12:00:00-04:00",
			[]string{"2025-04-05T23:00:00-03:00", "2025-04-06T00:00:00-04:00"},
			[]string{"2025-04-05T23:00:00-04:00", "2025-04-06T00:00:00-04:00"},
			[]string{"2025-04-05T23:00:00-03:00", "2025-04-05T23:00:00-04:00", "2025-04-06T00:00:00-04:00"}},
		{"Santiago 2026", "America/Santiago", "30 23 * * *",
			"2026-04-03T12:00:00-03:00", "2026-04-05T12:00:00-04:00",
			[]string{"2026-04-03T23:30:00-03:00", "2026-04-04T23:30:00-03:00"},
			[]string{"2026-04-03T23:30:00-03:00", "2026-04-04T23:30:00-04:00"},
			[]string{"2026-04-03T23:30:00-03:00", "2026-04-04T23:30:00-03:00", "2026-04-04T23:30:00-04:00"}},
		{"Sydney, 5 April over three years", "Australia/Sydney", "0 2 5 4 *",
			"2025-01-01T00:00:00+11:00", "2027-12-31T00:00:00+11:00",
			[]string{"2025-04-05T02:00:00+11:00", "2026-04-05T02:00:00+11:00", "2027-04-05T02:00:00+10:00"},
			[]string{"2025-04-05T02:00:00+11:00", "2026-04-05T02:00:00+10:00", "2027-04-05T02:00:00+10:00"},
			[]string{"2025-04-05T02:00:00+11:00", "2026-04-05T02:00:00+11:00", "2026-04-05T02:00:00+10:00", "2027-04-05T02:00:00+10:00"}},
		{"NY interval specs follow real time whatever the policy", "America/New_York", "0 * * * *",
			"2026-11-01T00:30:00-04:00", "2026-11-01T02:00:00-05:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"},
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"},
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"}},
	}
	for _, tt := range tests {
		for _, repeat := range []cron.RepeatPolicy{cron.RepeatOnceFirst, cron.RepeatOnceLast, cron.RepeatBoth} {
			want := map[cron.RepeatPolicy][]string{cron.RepeatOnceFirst: tt.onceFirst, cron.RepeatOnceLast: tt.onceLast, cron.RepeatBoth: tt.both}[repeat]
			for _, gap := range []cron.GapPolicy{cron.GapShift, cron.GapSkip} {
				o := cron.Options{Location: mustLoad(t, tt.zone), Gap: gap, Repeat: repeat}
				t.Run(fmt.Sprintf("%s/%s/%s", tt.name, gap, repeat), func(t *testing.T) {
					checkExpand(t, tt.spec, o, tt.after, tt.until, want)
				})
			}
		}
	}
}

func checkExpand(t *testing.T, spec string, o cron.Options, after, until string, want []string) {
	t.Helper()
	s, err := cron.Parse(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	got := cron.Expand(s, mustTime(t, after), mustTime(t, until), 100)
	if diff := cmp.Diff(want, format(got, o.Location), cmpEmpty); diff != "" {
		t.Errorf("Parse(%q, %s, gap %s, repeat %s) in (%s, %s] (-want +got):\n%s", spec, o.Location, o.Gap, o.Repeat, after, until, diff)
	}
}

// TestDSTPerSecondInRepeatedHour follows a per-second spec through New
// York's repeated hour (2026-11-01 01:00-01:59), from several instants.
func TestDSTPerSecondInRepeatedHour(t *testing.T) {
	tests := []struct {
		name        string
		repeat      cron.RepeatPolicy
		after       string
		count       int
		first, last string
	}{
		{"once_first, from before", cron.RepeatOnceFirst, "2026-11-01T00:59:59-04:00", 3600, "2026-11-01T01:00:00-04:00", "2026-11-01T01:59:59-04:00"},
		{"once_last, from before", cron.RepeatOnceLast, "2026-11-01T00:59:59-04:00", 3600, "2026-11-01T01:00:00-05:00", "2026-11-01T01:59:59-05:00"},
		{"both, from before", cron.RepeatBoth, "2026-11-01T00:59:59-04:00", 7200, "2026-11-01T01:00:00-04:00", "2026-11-01T01:59:59-05:00"},
		{"once_first, from the first copy", cron.RepeatOnceFirst, "2026-11-01T01:30:00-04:00", 1799, "2026-11-01T01:30:01-04:00", "2026-11-01T01:59:59-04:00"},
		{"once_last, from the first copy", cron.RepeatOnceLast, "2026-11-01T01:30:00-04:00", 3600, "2026-11-01T01:00:00-05:00", "2026-11-01T01:59:59-05:00"},
		{"both, from the first copy", cron.RepeatBoth, "2026-11-01T01:30:00-04:00", 5399, "2026-11-01T01:30:01-04:00", "2026-11-01T01:59:59-05:00"},
		{"once_first, from the second copy", cron.RepeatOnceFirst, "2026-11-01T01:30:00-05:00", 0, "", ""},
		{"once_last, from the second copy", cron.RepeatOnceLast, "2026-11-01T01:30:00-05:00", 1799, "2026-11-01T01:30:01-05:00", "2026-11-01T01:59:59-05:00"},
		{"both, from the second copy", cron.RepeatBoth, "2026-11-01T01:30:00-05:00", 1799, "2026-11-01T01:30:01-05:00", "2026-11-01T01:59:59-05:00"},
	}
	loc := mustLoad(t, "America/New_York")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := cron.Parse("* * 1 * * *", cron.Options{Location: loc, Repeat: tt.repeat})
			if err != nil {
				t.Fatal(err)
			}
			got := cron.Expand(s, mustTime(t, tt.after), mustTime(t, "2026-11-01T12:00:00-05:00"), 10000)
			if len(got) != tt.count {
				t.Fatalf("%d occurrences, want %d", len(got), tt.count)
			}
			if tt.count > 0 {
				if diff := cmp.Diff([]string{tt.first, tt.last}, format([]time.Time{got[0], got[len(got)-1]}, loc)); diff != "" {
					t.Errorf("first and last (-want +got):\n%s", diff)
				}
			}
			for i := 1; i < len(got); i++ {
				if d := got[i].Sub(got[i-1]); d != time.Second && !(tt.repeat == cron.RepeatBoth && d == time.Hour-59*time.Minute-59*time.Second) {
					t.Fatalf("%v then %v", got[i-1].In(loc), got[i].In(loc))
				}
			}
			// The next day, the hour is not repeated.
			want := mustTime(t, "2026-11-02T01:00:00-05:00")
			if n := s.Next(mustTime(t, "2026-11-01T12:00:00-05:00")); !n.Equal(want) {
				t.Errorf("Next after the night = %v, want %v", n.In(loc), want.In(loc))
			}
		})
	}
}

// TestDSTPolicyOracle compares Next under every policy with a brute-force
// oracle that maps each matching wall minute to the instants that read it
// and lets the policy choose, around every transition of some zones.
func TestDSTPolicyOracle(t *testing.T) {
	zones := []struct {
		name string
		year int
	}{
		{"America/New_York", 2025},
		{"Europe/Berlin", 2027},
		{"Australia/Lord_Howe", 2024},
		{"America/Havana", 2025},
		{"America/Santiago", 2027},
		{"Australia/Sydney", 2026},
		{"Pacific/Apia", 2011},
		{"Antarctica/Troll", 2026},
		{"Europe/Dublin", 2026},
		{"Africa/Casablanca", 2026},
		{"Pacific/Chatham", 2026},
	}
	fixed := []string{"30 2 * * *", "*/20 1-3 * * *", "0 0 * * *", "15,45 0-2 * * *", "59 23 * * *", "*/10 23,0 * * *", "45 2 * * *", "0 1 * * *", "* 2 * * *"}
	interval := []string{"*/15 * * * *", "7,37 * * * *"}
	var opts []cron.Options
	for _, g := range []cron.GapPolicy{cron.GapShift, cron.GapSkip} {
		for _, r := range []cron.RepeatPolicy{cron.RepeatOnceFirst, cron.RepeatOnceLast, cron.RepeatBoth} {
			opts = append(opts, cron.Options{Gap: g, Repeat: r})
		}
	}
	for _, z := range zones {
		loc := mustLoad(t, z.name)
		for _, tr := range transitions(loc, z.year) {
			after, until := tr.Add(-26*time.Hour), tr.Add(26*time.Hour)
			m := newWallMap(loc, after, until)
			for _, spec := range append(fixed, interval...) {
				t.Run(fmt.Sprintf("%s/%s/%s", z.name, tr.UTC().Format(time.RFC3339), spec), func(t *testing.T) {
					matching := m.matching(mustParse(t, spec, time.UTC))
					isFixed := contains(fixed, spec)
					for _, o := range opts {
						o.Location = loc
						s, err := cron.Parse(spec, o)
						if err != nil {
							t.Fatal(err)
						}
						if !isFixed {
							// Intervals follow real time whatever the policy.
							o.Gap, o.Repeat = cron.GapSkip, cron.RepeatBoth
						}
						want := m.occurrences(matching, o, after, until)
						got := cron.Expand(s, after, until, 1000)
						if diff := cmp.Diff(format(want, loc), format(got, loc), cmpEmpty); diff != "" {
							t.Errorf("gap %s, repeat %s (-want +got):\n%s", o.Gap, o.Repeat, diff)
						}
					}
				})
			}
		}
	}
}

// wallMap maps wall minutes to the minute-aligned instants that read them,
// by walking real time minute by minute over a window widened by two days.
type wallMap struct {
	from, to time.Time // wall minutes to consider, inclusive
	byWall   map[time.Time][]time.Time
	instants []time.Time // in order
	walls    []time.Time // walls[i] is the reading of instants[i]
}

func newWallMap(loc *time.Location, after, until time.Time) *wallMap {
	m := &wallMap{
		from:   wallOf(after, loc).Add(-24 * time.Hour).Truncate(time.Minute),
		to:     wallOf(until, loc).Add(24 * time.Hour),
		byWall: make(map[time.Time][]time.Time),
	}
	for x := after.Add(-48 * time.Hour).Truncate(time.Minute); !x.After(until.Add(48 * time.Hour)); x = x.Add(time.Minute) {
		w := wallOf(x, loc)
		m.byWall[w] = append(m.byWall[w], x)
		m.instants, m.walls = append(m.instants, x), append(m.walls, w)
	}
	return m
}

// matching returns the wall minutes that utc, a spec evaluated in UTC,
// matches.
func (m *wallMap) matching(utc cron.Schedule) []time.Time {
	var out []time.Time
	for w := utc.Next(m.from.Add(-time.Second)); !w.IsZero() && !w.After(m.to); w = utc.Next(w) {
		if w.Second() == 0 {
			out = append(out, w)
		}
	}
	return out
}

// occurrences maps every matching wall minute to its instants: none in a
// gap, which GapShift replaces by the first instant after the gap; one; or
// two, which the repeat policy picks from. It returns those in (after,
// until], in order.
func (m *wallMap) occurrences(matching []time.Time, o cron.Options, after, until time.Time) []time.Time {
	var out []time.Time
	for _, w := range matching {
		xs := m.byWall[w]
		switch {
		case len(xs) == 0 && o.Gap == cron.GapShift:
			for i, rw := range m.walls {
				if rw.After(w) {
					out = append(out, m.instants[i])
					break
				}
			}
		case len(xs) == 1:
			out = append(out, xs[0])
		case len(xs) > 1 && o.Repeat == cron.RepeatOnceFirst:
			out = append(out, xs[0])
		case len(xs) > 1 && o.Repeat == cron.RepeatOnceLast:
			out = append(out, xs[len(xs)-1])
		case len(xs) > 1:
			out = append(out, xs...)
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	out = slices.CompactFunc(out, time.Time.Equal)
	return slices.DeleteFunc(out, func(x time.Time) bool { return !x.After(after) || x.After(until) })
}
