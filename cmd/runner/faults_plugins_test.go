//go:build faults

package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/redistest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// badPlugin is a probe that misbehaves, and what its occurrence must end as.
type badPlugin struct {
	mode   string
	status queue.Status
}

// scenarioBadPlugins runs, next to a healthy probe job, one job per kind of bad plugin
// (each its own plugin process, a copy of the probe): one that panics, one that exits, one
// that ignores its cancellation, one that writes 100 MiB of output. Each bad run fails and
// is retried per its policy (the flood succeeds), the healthy job misses nothing, the
// nodes' memory stays bounded, and no process is left behind.
func scenarioBadPlugins(t *testing.T, s *suite) {
	bad := []badPlugin{{"panic", queue.StatusFailed}, {"exit", queue.StatusFailed}, {"hang", queue.StatusFailed}, {"flood", queue.StatusSucceeded}}
	probe, err := os.ReadFile(filepath.Join(s.pluginDir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		if err := os.WriteFile(filepath.Join(s.pluginDir, "probe-"+b.mode), probe, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const attempts = 2
	var hcl strings.Builder
	hcl.WriteString(s.probeJobs(1, "* * * * * *", 300*time.Millisecond, 2*time.Second, retry5))
	for _, b := range bad {
		timeout := ""
		if b.mode == "hang" {
			timeout = "  timeout = \"2s\"\n"
		}
		fmt.Fprintf(&hcl, "job %q {\n  schedule = \"*/10 * * * * *\"\n%s  retry {\n    attempts = %d\n    backoff = \"1s\"\n  }\n  handler \"probe-%s\" {\n    sink = %q\n    mode = %q\n  }\n}\n",
			b.mode, timeout, attempts, b.mode, s.sink.URL(), b.mode)
	}
	srv := redistest.Start(t)
	f := s.fleetOf(t, hcl.String())
	f.rdb = srv.Client(t)
	for _, n := range []string{"a", "b"} {
		f.start(n, srv.URL())
	}
	from := nextSecond(time.Now(), time.Second)
	due := from.Truncate(10 * time.Second) // the first occurrence of the bad jobs in the window
	if due.Before(from) {
		due = due.Add(10 * time.Second)
	}
	outcome := map[string]queue.Record{}
	testwait.For(t, 90*time.Second, "every bad job's occurrence at "+due.Format(time.TimeOnly)+" to end for good", throttled(func() bool {
		for _, b := range bad {
			occ := cron.OccurrenceID(b.mode, due)
			for _, r := range f.history(b.mode) {
				if r.Occurrence == occ && r.Status != queue.StatusRetrying {
					outcome[b.mode] = r
				}
			}
		}
		return len(outcome) == len(bad)
	}))
	to := due.Add(5 * time.Second)
	f.waitDone(1, from, to, time.Second, 30*time.Second)
	fg := f.check(1, from, to, time.Second, nil)
	var peak []string
	for name, n := range f.nodes {
		kb := peakRSS(t, n.Pid())
		peak = append(peak, fmt.Sprintf("%s %d MiB", name, kb>>10))
		// A node keeps a bounded tail of a run's output; 100 MiB of it must not show.
		if kb > 256<<10 {
			t.Errorf("node %s peaked at %d MiB of memory, want a bounded node under 256 MiB", name, kb>>10)
		}
	}
	fg.leaked = f.stopAll()
	var ends []string
	for _, b := range bad {
		r := outcome[b.mode]
		ends = append(ends, fmt.Sprintf("%s: %s after %d attempts", b.mode, r.Status, r.Attempt))
		want := attempts
		if b.status == queue.StatusSucceeded {
			want = 1
		}
		if r.Status != b.status || r.Attempt != want {
			t.Errorf("%s: its occurrence ended %s after %d attempts (%s), want %s after %d", b.mode, r.Status, r.Attempt, r.Error, b.status, want)
		}
	}
	fg.note = strings.Join(ends, "; ") + "; peak RSS " + strings.Join(peak, ", ")
	s.report(t, fg)
	if fg.stale != 0 || fg.missed != 0 {
		t.Errorf("healthy job: stale writes %d, missed %d: want 0", fg.stale, fg.missed)
	}
}

// peakRSS is the process' peak resident set (VmHWM), in KiB.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	kb, err := fleettest.MemoryKiB(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	return kb
}
