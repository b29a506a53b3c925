package main_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// TestCalendarExcludedDatesNeverRun: two nodes, a job every second that excludes a calendar
// holding the days around now (UTC), and a job beside it without. The excluded job never
// starts its handler; its history shows each occurrence skipped once, with the calendar and
// the day; the other job runs; `runner next` lists the excluded fires as excluded.
func TestCalendarExcludedDatesNeverRun(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	// Yesterday to tomorrow, so that the test holds at any hour, midnight included.
	from, to := now.AddDate(0, 0, -1).Format("2006-01-02"), now.AddDate(0, 0, 1).Format("2006-01-02")
	f := newFleet(t, func(runs string) string {
		cmd := fleettest.RecordCommand(runs, 0)
		job := func(name, extra string) string {
			return fmt.Sprintf("job %q {\n  schedule = \"* * * * * *\"\n%s\n  handler \"exec\" {\n    command = [%q, %q, %q]\n    env = { RUNS = %q }\n  }\n}\n",
				name, extra, cmd[0], cmd[1], cmd[2], runs)
		}
		return fmt.Sprintf("runner {\n  namespace = \"e2e\"\n  lease = \"2s\"\n}\n"+
			"calendar \"days-off\" {\n  timezone = \"UTC\"\n  ranges = [{ from = %q, to = %q }]\n}\n", from, to) +
			job("excluded", `  exclude = ["days-off"]`) + job("runs", "")
	})
	f.start("a")
	f.start("b")

	testwait.For(t, 30*time.Second, "five runs of the other job and five skipped records", func() bool {
		n := 0
		for occ := range starts(f.events()) {
			if strings.HasPrefix(occ, "runs@") {
				n++
			}
		}
		return n >= 5 && len(f.history("e2e", "excluded")) >= 5
	})
	for occ := range starts(f.events()) {
		if !strings.HasPrefix(occ, "runs@") {
			t.Errorf("the handler started %s", occ)
		}
	}
	recs := f.history("e2e", "excluded")
	seen := map[string]int{}
	nodes := map[string]bool{}
	for _, r := range recs {
		seen[r.Occurrence]++
		nodes[r.Node] = true
		want := fmt.Sprintf("excluded by calendar %q (%s)", "days-off", r.ScheduledAt.UTC().Format("2006-01-02"))
		if r.Status != queue.StatusSkipped || r.Error != want || r.Attempt != 0 || r.FencingToken != 0 {
			t.Errorf("record %+v; want skipped: %s", r, want)
		}
	}
	for occ, n := range seen {
		if n != 1 {
			t.Errorf("%s recorded %d times, want once", occ, n)
		}
	}
	t.Logf("%d skipped records, written by %v", len(recs), nodes)

	// The history command shows the reason.
	if out := f.runCLI("history", "-config", f.conf, "-redis", f.url, "-n", "3", "excluded"); !strings.Contains(out, `excluded by calendar "days-off"`) {
		t.Errorf("runner history:\n%s", out)
	}

	// runner next lists the fires of the excluded days, marked, as JSON and as a table.
	var fires []struct {
		At           time.Time `json:"at"`
		Occurrence   string    `json:"occurrence"`
		Excluded     string    `json:"excluded"`
		ExcludedDate string    `json:"excluded_date"`
	}
	out := f.runCLI("next", "-config", f.conf, "-n", "3", "-json", "excluded")
	if err := json.Unmarshal([]byte(out), &fires); err != nil || len(fires) != 3 {
		t.Fatalf("next -json: %v\n%s", err, out)
	}
	for _, fr := range fires {
		if fr.Excluded != "days-off" || fr.ExcludedDate != fr.At.UTC().Format("2006-01-02") {
			t.Errorf("fire %+v, want excluded by days-off on its UTC day", fr)
		}
	}
	if out := f.runCLI("next", "-config", f.conf, "-n", "2", "excluded"); !strings.Contains(out, "EXCLUDED") || strings.Count(out, `excluded by "days-off"`) != 2 {
		t.Errorf("runner next:\n%s", out)
	}
	out = f.runCLI("next", "-config", f.conf, "-n", "2", "-json", "runs")
	if strings.Contains(out, "excluded") {
		t.Errorf("next -json of a job without calendars:\n%s", out)
	}
}
