package main_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// Alerts end to end: three real runner processes on one real Redis, alert handlers that
// append one line per start to a file, counted per event.

// alertLine is one start of an alert handler.
type alertLine struct {
	kind, watched, occ, node string
}

// alertBlock is an alert block on kinds whose exec handler appends an alertLine to file.
func alertBlock(kinds, lateAfter, file string) string {
	late := ""
	if lateAfter != "" {
		late = fmt.Sprintf("    late_after = %q\n", lateAfter)
	}
	return fmt.Sprintf(`  alert {
    on = [%s]
%s    handler "exec" {
      command = ["sh", "-c", "echo \"$CRONFLEET_ALERT_KIND $CRONFLEET_ALERT_OCCURRENCE $CRONFLEET_OCCURRENCE_ID $CRONFLEET_NODE\" >> \"$ALERTS\""]
      env     = { ALERTS = %q }
    }
  }
`, kinds, late, file)
}

// alertsFile is where the fleet's alert handlers write, beside its runs file.
func alertsFile(runs string) string { return filepath.Join(filepath.Dir(runs), "alerts.log") }

// alerts reads the alert handlers' lines (a last line without its newline is being written).
func (f *fleet) alerts() []alertLine {
	f.t.Helper()
	var out []alertLine
	for _, fs := range handlerLines(f.t, alertsFile(f.runs), 4) {
		out = append(out, alertLine{kind: fs[0], watched: fs[1], occ: fs[2], node: fs[3]})
	}
	return out
}

// checkAlertedOnce checks that the alert of kind started exactly once for each occurrence
// of events, and never for another.
func (f *fleet) checkAlertedOnce(kind cron.AlertKind, events map[string]bool) {
	f.t.Helper()
	got := f.alertCounts(kind)
	for occ := range events {
		if got[occ] != 1 {
			f.t.Errorf("%s alert of %s started %d times, want once", kind, occ, got[occ])
		}
	}
	for occ, n := range got {
		if !events[occ] {
			f.t.Errorf("%s alert of %s, which had no such event, started %d times", kind, occ, n)
		}
	}
}

// alertCounts counts the alert handler starts of kind per watched occurrence, checking
// that each names its alert id.
func (f *fleet) alertCounts(kind cron.AlertKind) map[string]int {
	f.t.Helper()
	out := map[string]int{}
	for _, l := range f.alerts() {
		if l.occ != cron.AlertID(l.watched, cron.AlertKind(l.kind)) {
			f.t.Errorf("alert %s about %s runs as occurrence %s", l.kind, l.watched, l.occ)
		}
		if l.kind == string(kind) {
			out[l.watched]++
		}
	}
	return out
}

// recordJob is a job of the fleet's runs file whose handler runs sleep, or fails when
// sleep is negative.
func recordJob(name, schedule, runs string, sleep time.Duration, body string) string {
	cmd := fleettest.RecordCommand(runs, max(sleep, 0))
	if sleep < 0 {
		cmd[2] += "; exit 1"
	}
	return fmt.Sprintf("job %q {\n  schedule = %q\n%s  handler \"exec\" {\n    command = [%q, %q, %q]\n    env     = { RUNS = %q }\n  }\n}\n",
		name, schedule, body, cmd[0], cmd[1], cmd[2], runs)
}

// TestAlertsOnFailureAndLate: with three nodes up, every run that fails for good fires its
// failure alert once; an occurrence that waits for its job's overlap slot past late_after
// fires its late alert once; occurrences that start on time fire none.
func TestAlertsOnFailureAndLate(t *testing.T) {
	t.Parallel()
	f := newFleet(t, func(runs string) string {
		alerts := alertsFile(runs)
		return "runner {\n  namespace = \"e2e\"\n  lease     = \"2s\"\n}\n" +
			recordJob("fails", "* * * * * *", runs, -1, "  max_runs = 3\n  overlap = \"allow\"\n  retry {\n    attempts = 1\n  }\n"+alertBlock(`"failure", "late"`, "1s", alerts)) +
			// waits' first run takes 3s: its second occurrence waits for the slot and
			// starts about 2s late; its third is skipped (one waits already).
			recordJob("waits", "* * * * * *", runs, 3*time.Second, "  max_runs = 3\n  overlap = \"buffer_one\"\n"+alertBlock(`"late", "failure"`, "1s", alerts)) +
			recordJob("ontime", "* * * * * *", runs, 0, "  max_runs = 3\n"+alertBlock(`"late", "failure", "missed"`, "1s", alerts))
	})
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}
	// Every occurrence is decided, and every alert ran, when each job's history says so.
	done := func() bool {
		fails, waits, ontime := f.finals("fails"), f.finals("waits"), f.finals("ontime")
		alertsDone := 0
		for occ, st := range fails {
			if cron.IsAlert(occ) && slices.Contains(st, queue.StatusSucceeded) {
				alertsDone++
			}
		}
		lateDone := false
		for occ, st := range waits {
			if cron.IsAlert(occ) && slices.Contains(st, queue.StatusSucceeded) {
				lateDone = true
			}
		}
		return alertsDone == 3 && lateDone && len(waits) >= 4 && len(ontime) == 3
	}
	testwait.For(t, 60*time.Second, "three failure alerts, a late alert and three runs on time", done)

	failed := map[string]bool{}
	for occ, st := range f.finals("fails") {
		if !cron.IsAlert(occ) && slices.Equal(st, []queue.Status{queue.StatusFailed}) {
			failed[occ] = true
		}
	}
	if len(failed) != 3 {
		t.Errorf("fails: %d occurrences failed, want 3: %v", len(failed), f.finals("fails"))
	}
	f.checkAlertedOnce(cron.AlertFailure, failed)

	// waits: exactly its second occurrence was late, once.
	late := f.alertCounts(cron.AlertLate)
	var wsp []span
	for _, s := range f.spans("waits") {
		if job, _ := dueOf(t, s.occ); job == "waits" {
			wsp = append(wsp, s)
		}
	}
	if len(wsp) != 2 {
		t.Fatalf("waits ran %d times, want its first and the one that waited: %+v", len(wsp), wsp)
	}
	second := wsp[1].occ
	if _, due := dueOf(t, second); wsp[1].start.Sub(due) < 1500*time.Millisecond {
		t.Errorf("%s started %v after it was due: not late, the test proves nothing", second, wsp[1].start.Sub(due))
	}
	for occ, n := range late {
		job, _ := dueOf(t, occ)
		switch {
		case occ == second && n == 1:
		case occ == second:
			t.Errorf("late alert of %s started %d times, want once", occ, n)
		default:
			t.Errorf("late alert of %s (%s), which was not late, started %d times", occ, job, n)
		}
	}
	if late[second] == 0 {
		t.Errorf("no late alert of %s, which started %v late", second, wsp[1].start.Sub(wsp[0].start)-time.Second)
	}
	// No watch left a record: only the alerts that ran are in history.
	for _, job := range []string{"fails", "waits", "ontime"} {
		for occ, st := range f.finals(job) {
			_, kind, ok := cron.ParseAlert(occ)
			expected := (job == "fails" && kind == cron.AlertFailure) || occ == cron.AlertID(second, cron.AlertLate)
			if ok && !expected {
				t.Errorf("%s: unexpected alert record %s %v", job, occ, st)
			}
		}
	}
}

// TestAlertsOnMissed: the whole fleet stops past its jobs' catch-up (none); when three
// nodes come back, every occurrence missed meanwhile fires its missed alert once.
func TestAlertsOnMissed(t *testing.T) {
	t.Parallel()
	f := newFleet(t, func(runs string) string {
		return "runner {\n  namespace = \"e2e\"\n  lease     = \"2s\"\n}\n" +
			recordJob("tick", "* * * * * *", runs, 0, "  catchup = \"none\"\n  overlap = \"allow\"\n"+alertBlock(`"missed", "failure"`, "", alertsFile(runs)))
	})
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}
	testwait.For(t, 20*time.Second, "runs of tick", func() bool { return len(f.events()) > 2 })
	for _, n := range []string{"a", "b", "c"} {
		if err := f.nodes[n].Stop(15 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	stoppedAt := time.Now()
	testwait.For(t, 30*time.Second, "the fleet to be down 6s", func() bool { return time.Since(stoppedAt) > 6*time.Second })
	for _, n := range []string{"a2", "b2", "c2"} {
		f.start(n)
	}
	restarted := time.Now()
	missed := map[string]bool{}
	testwait.For(t, 60*time.Second, "a missed alert for every missed occurrence, and a run after the restart", func() bool {
		clear(missed)
		ranAfter := false
		for _, r := range f.history("e2e", "tick") {
			switch {
			case r.Status == queue.StatusMissed:
				missed[r.Occurrence] = true
			case !cron.IsAlert(r.Occurrence) && r.Status == queue.StatusSucceeded && r.StartedAt.After(restarted.Add(time.Second)):
				ranAfter = true
			}
		}
		got := f.alertCounts(cron.AlertMissed)
		for occ := range missed {
			if got[occ] == 0 {
				return false
			}
		}
		return ranAfter && len(missed) > 0
	})
	f.checkAlertedOnce(cron.AlertMissed, missed)
	if n := len(f.alertCounts(cron.AlertFailure)); n != 0 {
		t.Errorf("%d failure alerts, want none", n)
	}
	t.Logf("%d occurrences missed while the fleet was down, each alerted once", len(missed))
}
