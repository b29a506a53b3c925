package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// TestPlanExcludes: the occurrences on a calendar's days leave the plan as skipped records,
// read in the job's zone; the last occurrence's next is the first one that runs.
func TestPlanExcludes(t *testing.T) {
	cfg := jobs(t, "plan", `
calendar "holidays" {
  dates = ["2026-12-25"]
}
job "berlin" {
  schedule = "* * * * * *"
  timezone = "Europe/Berlin"
  jitter   = "500ms"
  exclude  = ["holidays"]
  handler "x" {}
}`)
	j := cfg.Jobs[0]
	e := New(nil, nil, Config{Node: "a", Jobs: cfg.Jobs, Horizon: 10 * time.Second})
	// 23:59:55 in Berlin on Christmas Eve: the horizon crosses midnight into the holiday.
	now := time.Date(2026, 12, 24, 22, 59, 55, 0, time.UTC)
	x := e.plan(j, map[string]time.Time{}, now)
	var due, excluded []string
	for _, d := range x.Due {
		due = append(due, d.UTC().Format("15:04:05"))
	}
	for _, r := range x.Excluded {
		excluded = append(excluded, r.ScheduledAt.Format("15:04:05"))
		if r.Status != queue.StatusSkipped || r.Error != `excluded by calendar "holidays" (2026-12-25)` || r.Occurrence != cron.OccurrenceID(j.Name, r.ScheduledAt) || r.Node != "a" {
			t.Errorf("record %+v", r)
		}
	}
	if got, want := strings.Join(due, " "), "22:59:55 22:59:56 22:59:57 22:59:58 22:59:59"; got != want {
		t.Errorf("due %s, want %s", got, want)
	}
	if got, want := strings.Join(excluded, " "), "23:00:00 23:00:01 23:00:02 23:00:03 23:00:04 23:00:05"; got != want {
		t.Errorf("excluded %s, want %s", got, want)
	}
	if len(x.NotBefore) != len(x.Due) || len(x.IDs) != len(x.Due) || len(x.Next) != len(x.Due) {
		t.Fatalf("%d due, %d not-before, %d ids, %d next", len(x.Due), len(x.NotBefore), len(x.IDs), len(x.Next))
	}
	// After the last run before the holiday comes the first after it: 00:00 on the 26th.
	first := time.Date(2026, 12, 25, 23, 0, 0, 0, time.UTC)
	if want := first.Add(cron.Jitter(cron.OccurrenceID(j.Name, first), j.Jitter)); !x.Next[len(x.Next)-1].Equal(want) {
		t.Errorf("next of the last run = %v, want %v", x.Next[len(x.Next)-1], want)
	}
}

// TestExcludedNeverRuns: two nodes on a real Redis; a job every second whose calendar holds
// the days around now never starts its handler, and each of its occurrences is recorded
// skipped once, with the reason; a job beside it runs.
func TestExcludedNeverRuns(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	// Yesterday to tomorrow, so that the test does not depend on the hour it runs at.
	f := newFleet(t, "excluded", fmt.Sprintf(`
calendar "today" {
  ranges = [{ from = %q, to = %q }]
}
job "excluded" {
  schedule = "* * * * * *"
  exclude  = ["today"]
  handler "x" {}
}
job "runs" {
  schedule = "* * * * * *"
  handler "x" {}
}`, now.AddDate(0, 0, -1).Format("2006-01-02"), now.AddDate(0, 0, 1).Format("2006-01-02")))
	h := &handlers{fn: succeed}
	f.node("a", h, nil)
	f.node("b", h, nil)
	testwait.For(t, 15*time.Second, "three runs of the other job and three skipped records", func() bool {
		return len(h.started()) >= 3 && len(f.history("excluded")) >= 3
	})
	for _, r := range h.started() {
		if !strings.HasPrefix(r.OccurrenceID, "runs@") {
			t.Errorf("started %s", r.OccurrenceID)
		}
	}
	seen := map[string]int{}
	for _, r := range f.history("excluded") {
		seen[r.Occurrence]++
		day := r.ScheduledAt.UTC().Format("2006-01-02")
		if r.Status != queue.StatusSkipped || r.Error != `excluded by calendar "today" (`+day+`)` || r.Attempt != 0 {
			t.Errorf("record %+v", r)
		}
	}
	for occ, n := range seen {
		if n != 1 {
			t.Errorf("%s recorded %d times, want once", occ, n)
		}
	}
}
