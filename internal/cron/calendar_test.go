package cron_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/cron"
)

func mustDate(t testing.TB, s string) cron.Date {
	t.Helper()
	d, err := cron.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustCalendar(t testing.TB, name string, loc *time.Location, ranges ...[2]string) *cron.Calendar {
	t.Helper()
	var rs []cron.DateRange
	for _, r := range ranges {
		rs = append(rs, cron.DateRange{From: mustDate(t, r[0]), To: mustDate(t, r[1])})
	}
	c, err := cron.NewCalendar(name, loc, rs)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseDate(t *testing.T) {
	for _, s := range []string{"2026-12-25", "2028-02-29", "9999-12-31", "0001-01-01"} {
		d, err := cron.ParseDate(s)
		if err != nil || d.String() != s {
			t.Errorf("ParseDate(%q) = %v, %v; want it back", s, d, err)
		}
	}
	for _, s := range []string{"", "2026-12-5", "2026-2-05", "2026-02-30", "2027-02-29", "26-12-25", "2026/12/25", "2026-12-25T00:00:00Z", " 2026-12-25", "2026-13-01"} {
		if d, err := cron.ParseDate(s); err == nil {
			t.Errorf("ParseDate(%q) = %v, want an error", s, d)
		}
	}
}

func TestNewCalendar(t *testing.T) {
	c := mustCalendar(t, "holidays", nil,
		[2]string{"2026-12-31", "2027-01-01"},
		[2]string{"2026-12-25", "2026-12-25"},
		[2]string{"2026-12-24", "2026-12-26"}, // overlaps
		[2]string{"2026-12-27", "2026-12-27"}, // touches
		[2]string{"2026-12-30", "2026-12-30"}, // touches the first
	)
	var got []string
	for _, r := range c.Ranges() {
		got = append(got, r.From.String()+".."+r.To.String())
	}
	want := []string{"2026-12-24..2026-12-27", "2026-12-30..2027-01-01"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Ranges (-want +got):\n%s", diff)
	}
	for d, want := range map[string]bool{"2026-12-23": false, "2026-12-24": true, "2026-12-27": true, "2026-12-28": false, "2026-12-29": false, "2026-12-30": true, "2027-01-01": true, "2027-01-02": false} {
		if got := c.Contains(mustDate(t, d)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", d, got, want)
		}
	}

	// The same days written otherwise have the same digest; another zone has another.
	same := mustCalendar(t, "holidays", nil, [2]string{"2026-12-30", "2027-01-01"}, [2]string{"2026-12-24", "2026-12-27"})
	if c.Digest() != same.Digest() {
		t.Errorf("the digests of equal calendars differ: %s, %s", c.Digest(), same.Digest())
	}
	zoned := mustCalendar(t, "holidays", mustLoad(t, "Europe/Berlin"), [2]string{"2026-12-30", "2027-01-01"}, [2]string{"2026-12-24", "2026-12-27"})
	if c.Digest() == zoned.Digest() {
		t.Error("a calendar with a zone has the digest of one without")
	}

	if _, err := cron.NewCalendar("backwards", nil, []cron.DateRange{{From: mustDate(t, "2026-12-26"), To: mustDate(t, "2026-12-24")}}); err == nil {
		t.Error("a range that ends before it starts was accepted")
	}
	if _, err := cron.NewCalendar("local", time.Local, nil); err == nil {
		t.Error("time.Local was accepted")
	}
}

// TestExcludedZones: a calendar day is read in the job's zone unless the calendar names
// one, so the same instant is on Christmas Day in Berlin and on Christmas Eve in UTC.
func TestExcludedZones(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	jobZone := mustCalendar(t, "holidays", nil, [2]string{"2026-12-25", "2026-12-25"})
	utcZone := mustCalendar(t, "utc", time.UTC, [2]string{"2026-12-25", "2026-12-25"})
	tests := []struct {
		at   string
		loc  *time.Location
		cals []*cron.Calendar
		want string // "" for not excluded
	}{
		{"2026-12-24T23:30:00Z", berlin, []*cron.Calendar{jobZone}, `excluded by calendar "holidays" (2026-12-25)`},
		{"2026-12-24T23:30:00Z", time.UTC, []*cron.Calendar{jobZone}, ""},
		{"2026-12-24T23:30:00Z", berlin, []*cron.Calendar{utcZone}, ""},
		{"2026-12-25T23:30:00Z", berlin, []*cron.Calendar{utcZone}, `excluded by calendar "utc" (2026-12-25)`},
		{"2026-12-25T23:30:00Z", berlin, []*cron.Calendar{jobZone}, ""},
		{"2026-12-25T12:00:00Z", berlin, []*cron.Calendar{jobZone, utcZone}, `excluded by calendar "holidays" (2026-12-25)`},
		{"2026-12-25T12:00:00Z", berlin, []*cron.Calendar{utcZone, jobZone}, `excluded by calendar "utc" (2026-12-25)`},
		{"2026-12-25T12:00:00Z", nil, []*cron.Calendar{jobZone}, `excluded by calendar "holidays" (2026-12-25)`},
	}
	for _, tt := range tests {
		x, ok := cron.Excluded(mustTime(t, tt.at), tt.loc, tt.cals)
		got := ""
		if ok {
			got = x.String()
		}
		if got != tt.want {
			t.Errorf("Excluded(%s in %v) = %q, want %q", tt.at, tt.loc, got, tt.want)
		}
	}
}

func TestWithout(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	newYork := mustLoad(t, "America/New_York")
	havana := mustLoad(t, "America/Havana")
	tests := []struct {
		name         string
		spec         string
		loc          *time.Location
		cals         []*cron.Calendar
		after, until string
		want         []string // in loc
	}{{
		name: "a day in the job's zone", spec: "0 30 0,23 * * *", loc: berlin,
		cals:  []*cron.Calendar{mustCalendar(t, "h", nil, [2]string{"2026-12-25", "2026-12-25"})},
		after: "2026-12-24T00:00:00Z", until: "2026-12-27T00:00:00Z",
		want: []string{"2026-12-24T23:30:00+01:00", "2026-12-26T00:30:00+01:00", "2026-12-26T23:30:00+01:00", "2026-12-27T00:30:00+01:00"},
	}, {
		name: "a day in UTC for a Berlin job", spec: "0 30 0,23 * * *", loc: berlin,
		cals:  []*cron.Calendar{mustCalendar(t, "h", time.UTC, [2]string{"2026-12-25", "2026-12-25"})},
		after: "2026-12-24T00:00:00Z", until: "2026-12-27T00:00:00Z",
		// 2026-12-25 00:30 CET is still the 24th in UTC, and 2026-12-26 00:30 CET the 25th.
		want: []string{"2026-12-24T23:30:00+01:00", "2026-12-25T00:30:00+01:00", "2026-12-26T23:30:00+01:00", "2026-12-27T00:30:00+01:00"},
	}, {
		name: "the spring-forward day, the shifted instant included", spec: "0 30 2 * * *", loc: berlin,
		cals:  []*cron.Calendar{mustCalendar(t, "h", nil, [2]string{"2026-03-29", "2026-03-29"})},
		after: "2026-03-27T00:00:00Z", until: "2026-03-31T00:00:00Z",
		want: []string{"2026-03-27T02:30:00+01:00", "2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00"},
	}, {
		name: "the fall-back day, both copies of the hour", spec: "0 */30 * * * *", loc: berlin,
		cals:  []*cron.Calendar{mustCalendar(t, "h", nil, [2]string{"2026-10-25", "2026-10-25"})},
		after: "2026-10-24T23:00:00+02:00", until: "2026-10-26T01:00:00+01:00",
		want: []string{"2026-10-24T23:30:00+02:00", "2026-10-26T00:00:00+01:00", "2026-10-26T00:30:00+01:00", "2026-10-26T01:00:00+01:00"},
	}, {
		name: "a range across the year's end", spec: "@daily", loc: newYork,
		cals:  []*cron.Calendar{mustCalendar(t, "h", nil, [2]string{"2026-12-24", "2027-01-01"})},
		after: "2026-12-22T12:00:00Z", until: "2027-01-04T12:00:00Z",
		want: []string{"2026-12-23T00:00:00-05:00", "2027-01-02T00:00:00-05:00", "2027-01-03T00:00:00-05:00", "2027-01-04T00:00:00-05:00"},
	}, {
		name: "midnight in a daylight-saving gap", spec: "0 0 * * * *", loc: havana,
		// Havana springs from 00:00 to 01:00 on 2026-03-08: that day starts at 01:00.
		cals:  []*cron.Calendar{mustCalendar(t, "h", nil, [2]string{"2026-03-07", "2026-03-07"})},
		after: "2026-03-06T22:30:00-05:00", until: "2026-03-08T03:30:00-04:00",
		want: []string{"2026-03-06T23:00:00-05:00", "2026-03-08T01:00:00-04:00", "2026-03-08T02:00:00-04:00", "2026-03-08T03:00:00-04:00"},
	}, {
		name: "every second, a long range costs one step", spec: "* * * * * *", loc: time.UTC,
		cals:  []*cron.Calendar{mustCalendar(t, "h", nil, [2]string{"2026-01-01", "2126-01-01"})},
		after: "2025-12-31T23:59:58Z", until: "2126-01-02T00:00:02Z",
		want: []string{"2025-12-31T23:59:59Z", "2126-01-02T00:00:00Z", "2126-01-02T00:00:01Z", "2126-01-02T00:00:02Z"},
	}, {
		name: "two calendars in different zones", spec: "0 0 12 * * *", loc: berlin,
		cals: []*cron.Calendar{
			mustCalendar(t, "a", nil, [2]string{"2026-12-24", "2026-12-24"}),
			mustCalendar(t, "b", newYork, [2]string{"2026-12-25", "2026-12-25"}),
		},
		after: "2026-12-23T00:00:00Z", until: "2026-12-27T00:00:00Z",
		want: []string{"2026-12-23T12:00:00+01:00", "2026-12-26T12:00:00+01:00"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := cron.Parse(tt.spec, cron.Options{Location: tt.loc})
			if err != nil {
				t.Fatal(err)
			}
			got := cron.Expand(cron.Without(s, tt.loc, tt.cals), mustTime(t, tt.after), mustTime(t, tt.until), 100)
			if diff := cmp.Diff(tt.want, format(got, tt.loc)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// Every instant Without drops is one that Excluded names, and no other.
			all := cron.Expand(s, mustTime(t, tt.after), mustTime(t, tt.until), 1000)
			if len(all) < 1000 {
				kept := map[time.Time]bool{}
				for _, g := range got {
					kept[g] = true
				}
				for _, a := range all {
					_, excluded := cron.Excluded(a, tt.loc, tt.cals)
					if excluded == kept[a] {
						t.Errorf("%s: Excluded says %v, Without kept it: %v", a.In(tt.loc).Format(time.RFC3339), excluded, kept[a])
					}
				}
			}
		})
	}
}

func TestWithoutNoCalendars(t *testing.T) {
	s := mustParse(t, "@daily", nil)
	if got := cron.Without(s, nil, nil); got != s {
		t.Errorf("Without(s, nil, nil) = %v, want s itself", got)
	}
}
