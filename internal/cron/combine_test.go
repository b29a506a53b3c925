package cron_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/cron"
)

func TestUnion(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	at := mustTime(t, "2026-03-02T00:00:00Z") // a Monday
	tests := []struct {
		name  string
		s     cron.Schedule
		until time.Time
		want  []string
	}{
		{"shared instants are due once", cron.Union(
			mustParse(t, "0 */2 * * *", nil), mustParse(t, "0 */3 * * *", nil)),
			at.Add(7 * time.Hour),
			[]string{"2026-03-02T02:00:00Z", "2026-03-02T03:00:00Z", "2026-03-02T04:00:00Z", "2026-03-02T06:00:00Z"}},
		{"weekdays at 9, weekends at 11, in a zone", cron.Union(
			mustParse(t, "0 9 * * 1-5", berlin), mustParse(t, "0 11 * * 0,6", berlin)),
			mustTime(t, "2026-03-09T12:00:00Z"),
			[]string{"2026-03-02T08:00:00Z", "2026-03-03T08:00:00Z", "2026-03-04T08:00:00Z", "2026-03-05T08:00:00Z", "2026-03-06T08:00:00Z",
				"2026-03-07T10:00:00Z", "2026-03-08T10:00:00Z", "2026-03-09T08:00:00Z"}},
		{"with @every", cron.Union(mustParse(t, "@every 40m", nil), mustParse(t, "0 * * * *", nil)),
			at.Add(2 * time.Hour),
			[]string{"2026-03-02T00:40:00Z", "2026-03-02T01:00:00Z", "2026-03-02T01:20:00Z", "2026-03-02T02:00:00Z"}},
		{"a member that ends", cron.Union(
			cron.Bounded(mustParse(t, "*/10 * * * *", nil), time.Time{}, at.Add(20*time.Minute)), mustParse(t, "@hourly", nil)),
			at.Add(2 * time.Hour),
			[]string{"2026-03-02T00:10:00Z", "2026-03-02T00:20:00Z", "2026-03-02T01:00:00Z", "2026-03-02T02:00:00Z"}},
		{"nil members are ignored", cron.Union(nil, mustParse(t, "@hourly", nil), nil),
			at.Add(2 * time.Hour),
			[]string{"2026-03-02T01:00:00Z", "2026-03-02T02:00:00Z"}},
		{"a member that does not advance is ignored", cron.Union(brokenSchedule{}, mustParse(t, "@hourly", nil)),
			at.Add(2 * time.Hour),
			[]string{"2026-03-02T01:00:00Z", "2026-03-02T02:00:00Z"}},
		{"no members: never", cron.Union(), at.AddDate(1, 0, 0), nil},
		{"only nil: never", cron.Union(nil), at.AddDate(1, 0, 0), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cron.Expand(tt.s, at, tt.until, 100)
			if diff := cmp.Diff(tt.want, format(got, time.UTC), cmpEmpty); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestBounded(t *testing.T) {
	hourly := mustParse(t, "@hourly", nil)
	at := mustTime(t, "2026-03-02T00:00:00Z")
	tests := []struct {
		name       string
		start, end string // "" is the zero time
		after      time.Time
		want       []string
	}{
		{"start and end are included", "2026-03-02T02:00:00Z", "2026-03-02T04:00:00Z", at,
			[]string{"2026-03-02T02:00:00Z", "2026-03-02T03:00:00Z", "2026-03-02T04:00:00Z"}},
		{"start between occurrences", "2026-03-02T01:30:00Z", "2026-03-02T03:00:00Z", at,
			[]string{"2026-03-02T02:00:00Z", "2026-03-02T03:00:00Z"}},
		{"start a nanosecond after an occurrence", "2026-03-02T01:00:00.000000001Z", "2026-03-02T03:00:00Z", at,
			[]string{"2026-03-02T02:00:00Z", "2026-03-02T03:00:00Z"}},
		{"end a nanosecond before an occurrence", "", "2026-03-02T02:59:59.999999999Z", at,
			[]string{"2026-03-02T01:00:00Z", "2026-03-02T02:00:00Z"}},
		{"asked from after start", "2026-03-02T01:00:00Z", "2026-03-02T04:00:00Z", at.Add(2 * time.Hour),
			[]string{"2026-03-02T03:00:00Z", "2026-03-02T04:00:00Z"}},
		{"asked from start", "2026-03-02T01:00:00Z", "2026-03-02T03:00:00Z", at.Add(time.Hour),
			[]string{"2026-03-02T02:00:00Z", "2026-03-02T03:00:00Z"}},
		{"no end", "2026-03-02T04:00:00Z", "", at,
			[]string{"2026-03-02T04:00:00Z", "2026-03-02T05:00:00Z", "2026-03-02T06:00:00Z"}},
		{"no bounds", "", "", at,
			[]string{"2026-03-02T01:00:00Z", "2026-03-02T02:00:00Z", "2026-03-02T03:00:00Z"}},
		{"end before start: never", "2026-03-02T04:00:00Z", "2026-03-02T02:00:00Z", at, nil},
		{"asked from after end", "", "2026-03-02T02:00:00Z", at.Add(2 * time.Hour), nil},
	}
	parse := func(s string) time.Time {
		if s == "" {
			return time.Time{}
		}
		return mustTime(t, s)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cron.Bounded(hourly, parse(tt.start), parse(tt.end))
			got := cron.Expand(s, tt.after, tt.after.Add(6*time.Hour), 3)
			if diff := cmp.Diff(tt.want, format(got, time.UTC), cmpEmpty); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if n := cron.Bounded(nil, time.Time{}, time.Time{}).Next(at); !n.IsZero() {
		t.Errorf("Bounded(nil).Next = %v, want never", n)
	}
}
