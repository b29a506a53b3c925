package fleet_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/fleet"
)

// TestNextFiresExcluded: the fires a calendar excludes are listed, marked with the calendar
// and the day in its zone, and count toward n; NextRun passes over them. A calendar without
// a zone reads its days in the job's (Berlin: the 25th begins at 23:00 UTC on the 24th);
// one with a zone, in its own.
func TestNextFiresExcluded(t *testing.T) {
	cfg, _, diags := config.Parse("jobs.hcl", []byte(`
calendar "holidays" {
  dates = ["2026-12-25"]
}
calendar "utc" {
  timezone = "UTC"
  dates    = ["2026-12-27"]
}
job "berlin" {
  schedule = "0 30 0,23 * * *"
  timezone = "Europe/Berlin"
  exclude  = ["holidays", "utc"]
  handler "exec" { command = ["true"] }
}`))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	j := cfg.Job("berlin")
	var got []string
	for _, f := range fleet.NextFires(j, time.Date(2026, 12, 24, 12, 0, 0, 0, time.UTC), 8) {
		got = append(got, f.Local+" "+f.Excluded+" "+f.ExcludedDate)
	}
	want := []string{
		"2026-12-24T23:30:00.000+01:00  ",
		"2026-12-25T00:30:00.000+01:00 holidays 2026-12-25",
		"2026-12-25T23:30:00.000+01:00 holidays 2026-12-25",
		"2026-12-26T00:30:00.000+01:00  ",
		"2026-12-26T23:30:00.000+01:00  ",
		"2026-12-27T00:30:00.000+01:00  ", // the 26th in UTC
		"2026-12-27T23:30:00.000+01:00 utc 2026-12-27",
		"2026-12-28T00:30:00.000+01:00 utc 2026-12-27",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NextFires (-want +got):\n%s", diff)
	}
	next, ok := fleet.NextRun(j, time.Date(2026, 12, 24, 23, 0, 0, 0, time.UTC))
	if !ok || next.Local != "2026-12-26T00:30:00.000+01:00" || next.Excluded != "" {
		t.Errorf("NextRun = %+v, %v; want 2026-12-26 00:30 in Berlin", next, ok)
	}
}
