package config

import (
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
)

// TestCalendarHash: a changed calendar is a changed definition of every job that excludes
// it, and of no other, whether it lies in the same file or not.
func TestCalendarHash(t *testing.T) {
	const jobs = `
job "payroll" {
  schedule = "0 9 * * *"
  exclude  = ["holidays"]
  handler "exec" { command = ["true"] }
}
job "other" {
  schedule = "0 9 * * *"
  handler "exec" { command = ["true"] }
}
job "twin" {
  schedule = "0 9 * * *"
  exclude  = ["holidays"]
  handler "exec" { command = ["true"] }
}
`
	load := func(calendar string) *Config {
		t.Helper()
		cfg, _, diags := Parse("jobs.hcl", []byte(calendar+jobs))
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return cfg
	}
	a := load(`calendar "holidays" { dates = ["2026-12-25"] }`)
	// The same days written as a range: the same definition.
	same := load(`calendar "holidays" { ranges = [{ from = "2026-12-25", to = "2026-12-25" }] }`)
	b := load(`calendar "holidays" { dates = ["2026-12-25", "2026-12-26"] }`)
	zoned := load(`calendar "holidays" {
  dates    = ["2026-12-25"]
  timezone = "Europe/Berlin"
}`)
	for _, name := range []string{"payroll", "twin"} {
		if a.Job(name).Hash != same.Job(name).Hash {
			t.Errorf("%s: the same days written otherwise changed the hash", name)
		}
		if a.Job(name).Hash == b.Job(name).Hash {
			t.Errorf("%s: a holiday more left the hash as it was", name)
		}
		if a.Job(name).Hash == zoned.Job(name).Hash {
			t.Errorf("%s: the calendar's zone left the hash as it was", name)
		}
	}
	if a.Job("other").Hash != b.Job("other").Hash {
		t.Error("a job that excludes no calendar changed with the calendar")
	}
	noCalendar, _, diags := Parse("jobs.hcl", []byte(`job "other" {
  schedule = "0 9 * * *"
  handler "exec" { command = ["true"] }
}`))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if noCalendar.Job("other").Hash != a.Job("other").Hash {
		t.Error("a job's hash depends on calendars it does not exclude")
	}

	// One calendar, and one list, for all the jobs that exclude it.
	if p, w := a.Job("payroll").Exclude, a.Job("twin").Exclude; len(p) != 1 || &p[0] != &w[0] || p[0] != a.Calendars[0] {
		t.Errorf("the jobs do not share their exclude list: %p, %p", p, w)
	}
	x, ok := cron.Excluded(time.Date(2026, 12, 25, 9, 0, 0, 0, time.UTC), a.Job("payroll").Location, a.Job("payroll").Exclude)
	if !ok || x.String() != `excluded by calendar "holidays" (2026-12-25)` {
		t.Errorf("Excluded = %v, %v", x, ok)
	}
}
