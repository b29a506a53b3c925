package cron_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/cron"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := cron.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustParse(t testing.TB, spec string, loc *time.Location) cron.Schedule {
	t.Helper()
	s, err := cron.Parse(spec, cron.Options{Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// format renders instants in loc, so a diff shows wall time and offset.
func format(ts []time.Time, loc *time.Location) []string {
	out := make([]string, len(ts))
	for i, v := range ts {
		out[i] = v.In(loc).Format(time.RFC3339)
	}
	return out
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		spec string
		loc  *time.Location
		want string
	}{
		{"out of range", "61 * * * *", nil,
			`cron: parse "61 * * * *": end of range (61) above maximum (59): 61`},
		{"empty", "", nil, `cron: parse "": empty spec string`},
		{"blank", "   ", nil, `cron: parse "   ": empty spec string`},
		{"too few fields", "* * * *", nil,
			`cron: parse "* * * *": expected 5 to 6 fields, found 4: [* * * *]`},
		{"too many fields", "0 0 0 * * * *", nil,
			`cron: parse "0 0 0 * * * *": expected 5 to 6 fields, found 7: [0 0 0 * * * *]`},
		{"never matches: Feb 30", "0 0 30 2 *", nil,
			`cron: parse "0 0 30 2 *": never matches: no month has that day`},
		{"never matches: 31st of short months", "0 0 31 4,6,9,11 *", nil,
			`cron: parse "0 0 31 4,6,9,11 *": never matches: no month has that day`},
		{"never matches with seconds", "0 0 0 31 2 ?", nil,
			`cron: parse "0 0 0 31 2 ?": never matches: no month has that day`},
		{"empty seconds list", ", * 1 * * *", nil,
			`cron: parse ", * 1 * * *": never matches: the second field lists no values`},
		{"empty minute list", "0 ,, 2 * * *", nil,
			`cron: parse "0 ,, 2 * * *": never matches: the minute field lists no values`},
		{"empty hour list", "0 , * * *", nil,
			`cron: parse "0 , * * *": never matches: the hour field lists no values`},
		{"empty month list", "0 0 1 , *", nil,
			`cron: parse "0 0 1 , *": never matches: the month field lists no values`},
		{"empty day-of-month list", "0 0 , * *", nil,
			`cron: parse "0 0 , * *": never matches: the day-of-month field lists no values`},
		{"empty day-of-week list", "0 0 * * ,", nil,
			`cron: parse "0 0 * * ,": never matches: the day-of-week field lists no values`},
		{"empty day lists", "0 0 , * ,", nil,
			`cron: parse "0 0 , * ,": never matches: the day-of-month field lists no values`},
		{"bare TZ= (panics robfig)", "TZ=", nil,
			`cron: parse "TZ=": TZ= and CRON_TZ= prefixes are not supported; set the job's timezone attribute instead`},
		{"bare CRON_TZ= (panics robfig)", "CRON_TZ=", nil,
			`cron: parse "CRON_TZ=": TZ= and CRON_TZ= prefixes are not supported; set the job's timezone attribute instead`},
		{"TZ= with zone", "TZ=Europe/Berlin 0 * * * *", nil,
			`cron: parse "TZ=Europe/Berlin 0 * * * *": TZ= and CRON_TZ= prefixes are not supported; set the job's timezone attribute instead`},
		{"CRON_TZ= after blanks", "  CRON_TZ=UTC @daily", nil,
			`cron: parse "  CRON_TZ=UTC @daily": TZ= and CRON_TZ= prefixes are not supported; set the job's timezone attribute instead`},
		{"unknown descriptor", "@fortnightly", nil,
			`cron: parse "@fortnightly": unrecognized descriptor: @fortnightly`},
		{"@every without duration", "@every", nil,
			`cron: parse "@every": want "@every <duration>", e.g. "@every 90s"`},
		{"@every with two durations", "@every 1s 2s", nil,
			`cron: parse "@every 1s 2s": want "@every <duration>", e.g. "@every 90s"`},
		{"@every bad duration", "@every soon", nil,
			`cron: parse "@every soon": time: invalid duration "soon"`},
		{"@every sub-second", "@every 500ms", nil,
			`cron: parse "@every 500ms": @every period 500ms is shorter than 1s`},
		{"@every zero", "@every 0s", nil,
			`cron: parse "@every 0s": @every period 0s is shorter than 1s`},
		{"@every negative", "@every -1m", nil,
			`cron: parse "@every -1m": @every period -1m0s is shorter than 1s`},
		{"@every fractional seconds", "@every 1.5s", nil,
			`cron: parse "@every 1.5s": @every period 1.5s is not a whole number of seconds`},
		{"time.Local", "@daily", time.Local,
			`cron: parse "@daily": time.Local is not allowed, it differs between nodes; load an IANA zone`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := cron.Parse(tt.spec, cron.Options{Location: tt.loc})
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tt.spec, s)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("Parse(%q) error (-want +got):\n%s", tt.spec, diff)
			}
		})
	}
}

func TestParse(t *testing.T) {
	const from = "2026-02-27T10:00:00Z" // a Friday
	tests := []struct {
		spec string
		zone string
		want []string
	}{
		{"30 2 * * *", "", []string{"2026-02-28T02:30:00Z", "2026-03-01T02:30:00Z", "2026-03-02T02:30:00Z"}},
		{"15 30 2 * * *", "", []string{"2026-02-28T02:30:15Z", "2026-03-01T02:30:15Z", "2026-03-02T02:30:15Z"}},
		{"  30 2 * * *  ", "", []string{"2026-02-28T02:30:00Z", "2026-03-01T02:30:00Z", "2026-03-02T02:30:00Z"}},
		{"*/20 10 * * *", "", []string{"2026-02-27T10:20:00Z", "2026-02-27T10:40:00Z", "2026-02-28T10:00:00Z"}},
		{"0 9 * * MON-FRI", "", []string{"2026-03-02T09:00:00Z", "2026-03-03T09:00:00Z", "2026-03-04T09:00:00Z"}},
		{"0 0 1 JAN ?", "", []string{"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"}},
		// Day-of-month and day-of-week both restricted: either matches.
		{"0 0 13 * FRI", "", []string{"2026-03-06T00:00:00Z", "2026-03-13T00:00:00Z", "2026-03-20T00:00:00Z"}},
		{"0 0 , * MON", "", []string{"2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z", "2026-03-16T00:00:00Z"}},
		{"0 0 29 2 *", "", []string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z"}},
		{"@hourly", "", []string{"2026-02-27T11:00:00Z", "2026-02-27T12:00:00Z", "2026-02-27T13:00:00Z"}},
		{"@daily", "", []string{"2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"}},
		{"@midnight", "Asia/Tokyo", []string{"2026-02-28T00:00:00+09:00", "2026-03-01T00:00:00+09:00", "2026-03-02T00:00:00+09:00"}},
		{"@weekly", "", []string{"2026-03-01T00:00:00Z", "2026-03-08T00:00:00Z", "2026-03-15T00:00:00Z"}},
		{"@monthly", "Europe/Berlin", []string{"2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00", "2026-05-01T00:00:00+02:00"}},
		{"@yearly", "", []string{"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"}},
		{"@annually", "", []string{"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"}},
		{"@every 90s", "", []string{"2026-02-27T10:01:30Z", "2026-02-27T10:03:00Z", "2026-02-27T10:04:30Z"}},
		{"@every 1h30m", "Asia/Kolkata", []string{"2026-02-27T16:00:00+05:30", "2026-02-27T17:30:00+05:30", "2026-02-27T19:00:00+05:30"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"/"+tt.zone, func(t *testing.T) {
			loc := mustLoad(t, tt.zone)
			got := cron.Expand(mustParse(t, tt.spec, loc), mustTime(t, from), mustTime(t, "2100-01-01T00:00:00Z"), len(tt.want))
			if diff := cmp.Diff(tt.want, format(got, loc)); diff != "" {
				t.Errorf("Parse(%q, %s) occurrences after %s (-want +got):\n%s", tt.spec, loc, from, diff)
			}
		})
	}
}

func TestParseNilLocationIsUTC(t *testing.T) {
	s := mustParse(t, "0 3 * * *", nil)
	got := s.Next(mustTime(t, "2026-01-01T05:00:00+02:00"))
	if diff := cmp.Diff(mustTime(t, "2026-01-02T03:00:00Z"), got); diff != "" {
		t.Errorf("Next (-want +got):\n%s", diff)
	}
}

func TestNextRange(t *testing.T) {
	tests := []struct {
		name string
		spec string
		zone string
		from time.Time
		want time.Time
	}{
		// robfig gives up after five years; Feb 29 2096 and 2104 are eight apart.
		{"Feb 29 across 2100", "0 0 29 2 *", "", time.Date(2096, 3, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2104, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"Feb 29 across 2100 in a zone", "0 12 29 2 *", "Europe/Berlin", time.Date(2096, 3, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2104, 2, 29, 11, 0, 0, 0, time.UTC)},
		{"zero time", "0 0 1 1 *", "", time.Time{}, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(1, 0, 0)},
		{"before year 1", "@daily", "", time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"before year 1, @every", "@every 1s", "", time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)},
		{"last instant", "59 23 31 12 *", "", time.Date(9999, 12, 30, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 0, 0, time.UTC)},
		{"past year 9999", "@daily", "", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), time.Time{}},
		{"last day in a zone", "@daily", "America/New_York", time.Date(9999, 12, 30, 6, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 5, 0, 0, 0, time.UTC)},
		{"past year 9999 in a zone", "@daily", "America/New_York", time.Date(9999, 12, 31, 6, 0, 0, 0, time.UTC), time.Time{}},
		{"past year 9999, @every", "@every 1h", "", time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC), time.Time{}},
		{"far future", "* * * * *", "", time.Unix(1<<62, 0), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustParse(t, tt.spec, mustLoad(t, tt.zone)).Next(tt.from)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q, %q).Next(%v) (-want +got):\n%s", tt.spec, tt.zone, tt.from, diff)
			}
		})
	}
}

func TestLoadLocation(t *testing.T) {
	tests := []struct {
		name     string
		wantName string
		wantErr  string
	}{
		{name: "", wantName: "UTC"},
		{name: "UTC", wantName: "UTC"},
		{name: "Europe/Berlin", wantName: "Europe/Berlin"},
		{name: "Australia/Lord_Howe", wantName: "Australia/Lord_Howe"},
		{name: "Local", wantErr: `cron: time zone "Local" is not allowed: it differs between nodes; use an IANA name such as "Europe/Berlin" or "UTC"`},
		{name: "Mars/Olympus_Mons", wantErr: `cron: unknown time zone "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons`},
		{name: "../etc/passwd", wantErr: `cron: unknown time zone "../etc/passwd": time: invalid location name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := cron.LoadLocation(tt.name)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tt.wantErr, gotErr); diff != "" {
				t.Fatalf("LoadLocation(%q) error (-want +got):\n%s", tt.name, diff)
			}
			if err == nil && loc.String() != tt.wantName {
				t.Errorf("LoadLocation(%q) = %s, want %s", tt.name, loc, tt.wantName)
			}
		})
	}
}

// TestEveryIsEpochAnchored checks that @every yields the same instants
// whenever a node starts asking and whatever the zone.
func TestEveryIsEpochAnchored(t *testing.T) {
	tests := []struct {
		spec string
		zone string
		from string
		want []string
	}{
		{"@every 90s", "", "2026-05-01T12:00:01Z", []string{"2026-05-01T12:01:30Z", "2026-05-01T12:03:00Z"}},
		{"@every 90s", "", "2026-05-01T12:01:29.999999999Z", []string{"2026-05-01T12:01:30Z", "2026-05-01T12:03:00Z"}},
		// An input on the grid is not itself returned.
		{"@every 90s", "", "2026-05-01T12:01:30Z", []string{"2026-05-01T12:03:00Z", "2026-05-01T12:04:30Z"}},
		{"@every 90s", "Pacific/Chatham", "2026-05-01T12:00:01Z", []string{"2026-05-01T12:01:30Z", "2026-05-01T12:03:00Z"}},
		// 7h does not divide a day: the grid is the epoch's, not midnight's.
		{"@every 7h", "", "2026-05-01T00:00:00Z", []string{"2026-05-01T04:00:00Z", "2026-05-01T11:00:00Z"}},
		{"@every 7h", "America/New_York", "2026-05-01T00:00:00Z", []string{"2026-05-01T04:00:00Z", "2026-05-01T11:00:00Z"}},
		{"@every 24h", "Europe/Berlin", "2026-05-01T10:00:00Z", []string{"2026-05-02T00:00:00Z", "2026-05-03T00:00:00Z"}},
		// Before the epoch the grid continues (floor division).
		{"@every 7s", "", "1969-12-31T23:59:50Z", []string{"1969-12-31T23:59:53Z", "1970-01-01T00:00:00Z"}},
		// Across a fall-back hour: each real hour runs once.
		{"@every 1h", "America/New_York", "2026-11-01T04:30:00Z", []string{"2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"/"+tt.zone+"/"+tt.from, func(t *testing.T) {
			s := mustParse(t, tt.spec, mustLoad(t, tt.zone))
			first := s.Next(mustTime(t, tt.from))
			got := format([]time.Time{first, s.Next(first)}, time.UTC)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// brokenSchedule returns its input, which Expand must not loop on.
type brokenSchedule struct{}

func (brokenSchedule) Next(t time.Time) time.Time { return t }

func TestExpand(t *testing.T) {
	hourly := mustParse(t, "@hourly", nil)
	after := mustTime(t, "2026-01-01T00:00:00Z")
	tests := []struct {
		name  string
		s     cron.Schedule
		after time.Time
		until time.Time
		max   int
		want  []string
	}{
		{"after excluded, until included", hourly, after, after.Add(3 * time.Hour), 10,
			[]string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z"}},
		{"max", hourly, after, after.Add(24 * time.Hour), 2,
			[]string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"}},
		{"max zero", hourly, after, after.Add(24 * time.Hour), 0, nil},
		{"max negative", hourly, after, after.Add(24 * time.Hour), -1, nil},
		{"empty window", hourly, after, after.Add(59 * time.Minute), 10, nil},
		{"until before after", hourly, after, after.Add(-time.Hour), 10, nil},
		{"never again", hourly, time.Date(9999, 12, 31, 23, 30, 0, 0, time.UTC), time.Date(10000, 1, 2, 0, 0, 0, 0, time.UTC), 10, nil},
		{"schedule that does not advance", brokenSchedule{}, after, after.Add(time.Hour), 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cron.Expand(tt.s, tt.after, tt.until, tt.max)
			if diff := cmp.Diff(tt.want, format(got, time.UTC), cmpEmpty); diff != "" {
				t.Errorf("Expand (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.FilterValues(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func TestOccurrenceID(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	tests := []struct {
		name string
		job  string
		due  time.Time
		want string
	}{
		{"utc", "db-backup", time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), "db-backup@2026-03-29T01:00:00.000Z"},
		{"zone converted to UTC", "db-backup", time.Date(2026, 3, 29, 3, 0, 0, 0, berlin), "db-backup@2026-03-29T01:00:00.000Z"},
		{"milliseconds kept, finer truncated", "j", time.Date(2026, 1, 2, 3, 4, 5, 678_999_999, time.UTC), "j@2026-01-02T03:04:05.678Z"},
		{"job containing @", "ops@team", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "ops@team@2026-01-02T03:04:05.000Z"},
		{"year 1", "j", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "j@0001-01-01T00:00:00.000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := cron.OccurrenceID(tt.job, tt.due)
			if diff := cmp.Diff(tt.want, id); diff != "" {
				t.Fatalf("OccurrenceID (-want +got):\n%s", diff)
			}
			job, due, err := cron.ParseOccurrenceID(id)
			if err != nil {
				t.Fatalf("ParseOccurrenceID(%q): %v", id, err)
			}
			type parsed struct {
				Job string
				Due time.Time
			}
			want := parsed{tt.job, tt.due.Truncate(time.Millisecond)}
			if diff := cmp.Diff(want, parsed{job, due}); diff != "" {
				t.Errorf("ParseOccurrenceID(%q) (-want +got):\n%s", id, diff)
			}
			if due.Location() != time.UTC {
				t.Errorf("ParseOccurrenceID(%q) due in %s, want UTC", id, due.Location())
			}
		})
	}
}

// TestTriggeredID: an occurrence added by hand has an id of its own, apart from the
// scheduled occurrence of the same millisecond, which parses back to its job and instant.
func TestTriggeredID(t *testing.T) {
	at := time.Date(2026, 12, 5, 1, 20, 0, 123456789, time.UTC)
	id := cron.TriggeredID("db-backup", at, "k3x9")
	if want := "db-backup@2026-12-05T01:20:00.123Z~k3x9"; id != want {
		t.Errorf("TriggeredID = %q, want %q", id, want)
	}
	if !cron.IsTriggered(id) || cron.IsTriggered(cron.OccurrenceID("db-backup", at)) || id == cron.OccurrenceID("db-backup", at) {
		t.Errorf("IsTriggered(%q) = %v; a scheduled id must differ and not count as triggered", id, cron.IsTriggered(id))
	}
	job, due, err := cron.ParseOccurrenceID(id)
	if err != nil || job != "db-backup" || !due.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("ParseOccurrenceID(%q) = %q, %v, %v", id, job, due, err)
	}
}

func TestParseOccurrenceIDErrors(t *testing.T) {
	tests := []struct {
		id   string
		want string
	}{
		{"db-backup", `cron: occurrence id "db-backup": missing '@'`},
		{"@2026-01-02T03:04:05.000Z", `cron: occurrence id "@2026-01-02T03:04:05.000Z": empty job name`},
		{"j@2026-01-02T03:04:05Z", `cron: occurrence id "j@2026-01-02T03:04:05Z": parsing time "2026-01-02T03:04:05Z" as "2006-01-02T15:04:05.000Z": cannot parse "Z" as ".000"`},
		{"j@2026-01-02T3:04:05.000Z", `cron: occurrence id "j@2026-01-02T3:04:05.000Z": not in canonical form 2006-01-02T15:04:05.000Z`},
		{"j@2026-01-02T03:04:05.000+01:00", `cron: occurrence id "j@2026-01-02T03:04:05.000+01:00": parsing time "2026-01-02T03:04:05.000+01:00" as "2006-01-02T15:04:05.000Z": cannot parse "+01:00" as "Z"`},
		{"j@", `cron: occurrence id "j@": parsing time "" as "2006-01-02T15:04:05.000Z": cannot parse "" as "2006"`},
		{"j@2026-01-02T03:04:05.000Z~", `cron: occurrence id "j@2026-01-02T03:04:05.000Z~": the trigger's nonce must be [0-9a-z]+`},
		{"j@2026-01-02T03:04:05.000Z~A-1", `cron: occurrence id "j@2026-01-02T03:04:05.000Z~A-1": the trigger's nonce must be [0-9a-z]+`},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			job, due, err := cron.ParseOccurrenceID(tt.id)
			if err == nil {
				t.Fatalf("ParseOccurrenceID(%q) = %q, %v; want an error", tt.id, job, due)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("ParseOccurrenceID(%q) error (-want +got):\n%s", tt.id, diff)
			}
		})
	}
}

func TestParsePolicies(t *testing.T) {
	for _, p := range []cron.GapPolicy{cron.GapShift, cron.GapSkip} {
		got, err := cron.ParseGapPolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParseGapPolicy(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
	}
	for _, p := range []cron.RepeatPolicy{cron.RepeatOnceFirst, cron.RepeatOnceLast, cron.RepeatBoth} {
		got, err := cron.ParseRepeatPolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParseRepeatPolicy(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
	}
	names := []string{cron.GapShift.String(), cron.GapSkip.String(), cron.RepeatOnceFirst.String(), cron.RepeatOnceLast.String(), cron.RepeatBoth.String()}
	if diff := cmp.Diff([]string{"shift", "skip", "once_first", "once_last", "both"}, names); diff != "" {
		t.Errorf("policy names (-want +got):\n%s", diff)
	}

	errs := []struct {
		name string
		err  func() error
		want string
	}{
		{"gap, unknown", func() error { _, err := cron.ParseGapPolicy("jump"); return err },
			`cron: gap policy "jump": want "shift" or "skip"`},
		{"gap, empty", func() error { _, err := cron.ParseGapPolicy(""); return err },
			`cron: gap policy "": want "shift" or "skip"`},
		{"gap, case matters", func() error { _, err := cron.ParseGapPolicy("Skip"); return err },
			`cron: gap policy "Skip": want "shift" or "skip"`},
		{"repeat, unknown", func() error { _, err := cron.ParseRepeatPolicy("twice"); return err },
			`cron: repeat policy "twice": want "once_first", "once_last" or "both"`},
		{"repeat, a gap policy", func() error { _, err := cron.ParseRepeatPolicy("skip"); return err },
			`cron: repeat policy "skip": want "once_first", "once_last" or "both"`},
		{"Parse, gap out of range", func() error { _, err := cron.Parse("30 2 * * *", cron.Options{Gap: 2}); return err },
			`cron: parse "30 2 * * *": gap policy 2 is not one of "shift", "skip"`},
		{"Parse, repeat out of range", func() error { _, err := cron.Parse("30 2 * * *", cron.Options{Repeat: 9}); return err },
			`cron: parse "30 2 * * *": repeat policy 9 is not one of "once_first", "once_last", "both"`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
	if got := cron.GapPolicy(7).String(); got != "GapPolicy(7)" {
		t.Errorf("GapPolicy(7).String() = %q", got)
	}
	if got := cron.RepeatPolicy(7).String(); got != "RepeatPolicy(7)" {
		t.Errorf("RepeatPolicy(7).String() = %q", got)
	}
}

// TestAlertID: an alert has an id of its own, derived from the occurrence it is about, that
// parses back to that occurrence's job and instant and is told apart from runs and triggers.
func TestAlertID(t *testing.T) {
	at := time.Date(2026, 12, 5, 1, 20, 0, 0, time.UTC)
	for _, watched := range []string{cron.OccurrenceID("db@backup", at), cron.TriggeredID("db@backup", at, "k3x9")} {
		for _, kind := range cron.AlertKinds() {
			id := cron.AlertID(watched, kind)
			if want := watched + "~alert-" + string(kind); id != want {
				t.Errorf("AlertID = %q, want %q", id, want)
			}
			w, k, ok := cron.ParseAlert(id)
			if !ok || w != watched || k != kind || !cron.IsAlert(id) {
				t.Errorf("ParseAlert(%q) = %q, %q, %v", id, w, k, ok)
			}
			job, due, err := cron.ParseOccurrenceID(id)
			if err != nil || job != "db@backup" || !due.Equal(at) {
				t.Errorf("ParseOccurrenceID(%q) = %q, %v, %v", id, job, due, err)
			}
		}
		if cron.IsAlert(watched) {
			t.Errorf("IsAlert(%q) = true", watched)
		}
	}
	for _, id := range []string{
		"j@2026-01-02T03:04:05.000Z~alert-other",
		"j~alert-late@2026-01-02T03:04:05.000Z",
		"j@2026-01-02T03:04:05.000Z~alert-",
	} {
		if cron.IsAlert(id) {
			t.Errorf("IsAlert(%q) = true", id)
		}
	}
	if _, _, err := cron.ParseOccurrenceID("j@2026-01-02T3:04:05.000Z~alert-late"); err == nil || !strings.Contains(err.Error(), "alert id") {
		t.Errorf("ParseOccurrenceID of a malformed alert id: %v", err)
	}
}
