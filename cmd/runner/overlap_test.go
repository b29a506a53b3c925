package main_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// The overlap policies, end to end: real runner processes on one real Redis, a job every
// second whose handler runs longer than that. What ran when comes from the handlers' own
// start and end lines, and from the history the nodes wrote.

// overlapJob is the job file of one job named after its overlap policy, every second, whose
// handler runs for sleep.
func overlapJob(policy string, sleep time.Duration) func(runs string) string {
	return func(runs string) string {
		cmd := fleettest.RecordCommand(runs, sleep)
		return fmt.Sprintf(`runner {
  namespace = "e2e"
  lease     = "2s"
}
job %q {
  schedule = "* * * * * *"
  overlap  = %q
  handler "exec" {
    command = [%q, %q, %q]
    env     = { RUNS = %q }
  }
}
`, policy, policy, cmd[0], cmd[1], cmd[2], runs)
	}
}

// span is one run of a handler: from its start line to its end line, or, for a handler that
// was stopped before it wrote one, to the end its node recorded.
type span struct {
	occ        string
	node       string
	token      int64
	start, end time.Time
}

// spans pairs the start and end lines of each run (by fencing token); a run without an end
// line takes its history record's end, and one without either is still going (end zero).
func (f *fleet) spans(job string) []span {
	f.t.Helper()
	ended := map[int64]time.Time{}
	for _, r := range f.history("e2e", job) {
		if r.FencingToken > 0 && !r.EndedAt.IsZero() {
			ended[r.FencingToken] = r.EndedAt
		}
	}
	var out []span
	ev := f.events()
	for _, e := range ev {
		if e.Kind == "end" {
			ended[e.Token] = e.At
		}
	}
	for _, e := range ev {
		if e.Kind == "start" {
			out = append(out, span{occ: e.Occurrence, node: e.Node, token: e.Token, start: e.At, end: ended[e.Token]})
		}
	}
	slices.SortFunc(out, func(a, b span) int { return a.start.Compare(b.start) })
	return out
}

// overlaps returns the pairs of runs that were going at the same time.
func overlaps(spans []span) []string {
	var out []string
	for i := 1; i < len(spans); i++ {
		prev := spans[i-1]
		if prev.end.IsZero() || spans[i].start.Before(prev.end) {
			out = append(out, fmt.Sprintf("%s on %s (%s…%s) and %s on %s from %s", prev.occ, prev.node,
				prev.start.Format("15:04:05.000"), prev.end.Format("15:04:05.000"), spans[i].occ, spans[i].node, spans[i].start.Format("15:04:05.000")))
		}
	}
	return out
}

// finals returns, per occurrence, the statuses of its history records.
func (f *fleet) finals(job string) map[string][]queue.Status {
	out := map[string][]queue.Status{}
	for _, r := range f.history("e2e", job) {
		out[r.Occurrence] = append(out[r.Occurrence], r.Status)
	}
	return out
}

// overlapFleet starts nodes running overlapJob(policy, sleep), waits until the job ran n
// times to the end, and returns its runs, having checked that none overlapped unless the
// policy allows it.
func overlapFleet(t *testing.T, policy string, sleep time.Duration, n int, nodes ...string) (*fleet, []span) {
	t.Helper()
	f := newFleet(t, overlapJob(policy, sleep))
	for _, name := range nodes {
		f.start(name)
	}
	s := f.waitRuns(policy, n)
	if o := overlaps(s); len(o) > 0 && policy != "allow" {
		t.Errorf("runs overlapped under %s: %v", policy, o)
	}
	return f, s
}

// waitRuns waits until job ran n times to the end.
func (f *fleet) waitRuns(job string, n int) []span {
	f.t.Helper()
	var s []span
	testwait.For(f.t, 60*time.Second, fmt.Sprintf("%d runs of %s", n, job), func() bool {
		s = f.spans(job)
		done := 0
		for _, x := range s {
			if !x.end.IsZero() {
				done++
			}
		}
		return done >= n
	})
	return s
}

func TestOverlapSkipAcrossTheFleet(t *testing.T) {
	t.Parallel()
	f, s := overlapFleet(t, "skip", 2500*time.Millisecond, 3, "a", "b", "c")
	skipped := 0
	for occ, st := range f.finals("skip") {
		if slices.Contains(st, queue.StatusSkipped) {
			skipped++
			if slices.ContainsFunc(s, func(x span) bool { return x.occ == occ }) {
				t.Errorf("%s was recorded as skipped and ran", occ)
			}
		}
	}
	// A run of 2.5s every second: about two of every three occurrences are skipped.
	if skipped < 3 {
		t.Errorf("%d occurrences recorded as skipped over %d runs, want about two per run", skipped, len(s))
	}
	for _, r := range f.history("e2e", "skip") {
		if r.Status == queue.StatusSkipped && !strings.Contains(r.Error, "was still running (overlap skip)") {
			t.Errorf("skipped record %s says %q", r.Occurrence, r.Error)
		}
	}
	// A skipped occurrence is recorded before the run it overlapped ends; `runner history`
	// still lists by due time.
	var listed []queue.Record
	out := f.runCLI("history", "-config", f.conf, "-redis", f.redis.URL(), "-json", "skip")
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("history -json: %v\n%s", err, out)
	}
	for i := 1; i < len(listed); i++ {
		if listed[i].ScheduledAt.After(listed[i-1].ScheduledAt) {
			t.Errorf("history lists %s after %s", listed[i].Occurrence, listed[i-1].Occurrence)
		}
	}
}

// TestOverlapBufferOneAcrossTheFleet: the one occurrence that waited starts as soon as the
// run before it ends, on whichever node; the others are skipped.
func TestOverlapBufferOneAcrossTheFleet(t *testing.T) {
	t.Parallel()
	f, s := overlapFleet(t, "buffer_one", 2500*time.Millisecond, 3, "a", "b")
	for i := 1; i < len(s); i++ {
		// The one that waited: the first occurrence due after the previous run started.
		_, due := dueOf(t, s[i].occ)
		if want := s[i-1].start.Truncate(time.Second).Add(time.Second); !due.Equal(want) {
			t.Errorf("run %d was %s, want the occurrence due at %s, the first after %s started", i, s[i].occ, want.Format("15:04:05"), s[i-1].occ)
		}
		if gap := s[i].start.Sub(s[i-1].end); !s[i-1].end.IsZero() && gap > time.Second {
			t.Errorf("%s started %v after %s ended, want at once", s[i].occ, gap, s[i-1].occ)
		}
	}
	skipped := 0
	for _, r := range f.history("e2e", "buffer_one") {
		if r.Status == queue.StatusSkipped {
			skipped++
			if !strings.Contains(r.Error, "another occurrence already waited (overlap buffer_one)") {
				t.Errorf("skipped record %s says %q", r.Occurrence, r.Error)
			}
		}
	}
	if skipped == 0 {
		t.Error("nothing skipped, though a run of 2.5s every second leaves more than one waiting")
	}
}

func TestOverlapBufferAllAcrossTheFleet(t *testing.T) {
	t.Parallel()
	f, s := overlapFleet(t, "buffer_all", 1500*time.Millisecond, 4, "a", "b")
	// Every occurrence runs, in order, one after another.
	for i := 1; i < len(s); i++ {
		_, due := dueOf(t, s[i].occ)
		_, prevDue := dueOf(t, s[i-1].occ)
		if due != prevDue.Add(time.Second) {
			t.Errorf("run %d was %s, want the occurrence after %s", i, s[i].occ, s[i-1].occ)
		}
	}
	for occ, st := range f.finals("buffer_all") {
		if slices.Contains(st, queue.StatusSkipped) {
			t.Errorf("%s skipped under buffer_all", occ)
		}
	}
}

// TestOverlapCancelOtherAcrossTheFleet: each new occurrence cancels the run going, on the
// node that runs it, and starts once it ended.
func TestOverlapCancelOtherAcrossTheFleet(t *testing.T) {
	t.Parallel()
	f := newFleet(t, overlapJob("cancel_other", 10*time.Second))
	f.start("a")
	f.start("b")
	var cancelled []queue.Record
	testwait.For(t, 60*time.Second, "three runs cancelled", func() bool {
		cancelled = cancelled[:0]
		for _, r := range f.history("e2e", "cancel_other") {
			if r.Status == queue.StatusCancelled {
				cancelled = append(cancelled, r)
			}
		}
		return len(cancelled) >= 3
	})
	s := f.spans("cancel_other")
	if o := overlaps(s); len(o) > 0 {
		t.Errorf("runs overlapped under cancel_other: %v", o)
	}
	for _, r := range cancelled {
		i := slices.IndexFunc(s, func(x span) bool { return x.token == r.FencingToken })
		switch {
		case i < 0:
			t.Errorf("cancelled record %+v, but no such run started", r)
		case s[i].node != r.Node:
			t.Errorf("%s ran on %s but was recorded cancelled by %s", r.Occurrence, s[i].node, r.Node)
		case !strings.Contains(r.Error, "a newer occurrence replaces it (overlap cancel_other)"):
			t.Errorf("cancelled record %s says %q", r.Occurrence, r.Error)
		case r.EndedAt.Sub(r.StartedAt) > 5*time.Second:
			t.Errorf("%s ran %v of its 10s before it was cancelled, want about a renewal", r.Occurrence, r.EndedAt.Sub(r.StartedAt))
		}
	}
}

func TestOverlapAllowAcrossTheFleet(t *testing.T) {
	t.Parallel()
	_, s := overlapFleet(t, "allow", 2500*time.Millisecond, 3, "a", "b")
	if len(overlaps(s)) == 0 {
		t.Errorf("no two runs overlapped under allow: %+v", s)
	}
}

// TestOverlapSkipAcrossANodeKill: the node running the job dies; until its lease expires
// nothing else of the job starts, then its occurrence runs again elsewhere, and still no
// two runs of the job overlap.
func TestOverlapSkipAcrossANodeKill(t *testing.T) {
	t.Parallel()
	f := newFleet(t, overlapJob("skip", 2500*time.Millisecond))
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}
	var victim span
	testwait.For(t, 30*time.Second, "a run going", func() bool {
		s := f.spans("skip")
		if len(s) == 0 || !s[len(s)-1].end.IsZero() {
			return false
		}
		victim = s[len(s)-1]
		return true
	})
	node := f.nodes[victim.node]
	if err := node.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = node.Wait(10 * time.Second)
	pids := map[int]bool{}
	for _, e := range f.events() {
		if e.Occurrence == victim.occ && e.Token == victim.token {
			pids[e.Pid] = true
		}
	}
	testwait.For(t, 10*time.Second, "the killed node's handler to exit", func() bool {
		for p := range pids {
			if fleettest.Alive(p) {
				return false
			}
		}
		return true
	})
	deadAt := time.Now()
	testwait.For(t, 30*time.Second, "the killed node's occurrence to run again and end", func() bool {
		for _, x := range f.spans("skip") {
			if x.occ == victim.occ && x.token != victim.token && !x.end.IsZero() {
				return true
			}
		}
		return false
	})
	s := f.spans("skip")
	for i, x := range s {
		if x.token == victim.token {
			s[i].end = deadAt // no later than this: its handler was gone by then
		}
	}
	if o := overlaps(s); len(o) > 0 {
		t.Errorf("runs overlapped across the node kill: %v", o)
	}
}

// catchupJobs is a job file with one job per catch-up policy, every second, named after it.
func catchupJobs(runs string) string {
	cmd := fleettest.RecordCommand(runs, 0)
	var b strings.Builder
	b.WriteString("runner {\n  namespace = \"e2e\"\n  lease     = \"2s\"\n}\n")
	for _, p := range []string{"none", "latest", "all"} {
		fmt.Fprintf(&b, `job %q {
  schedule = "* * * * * *"
  catchup  = %q
  overlap  = "allow"
  handler "exec" {
    command = [%q, %q, %q]
    env     = { RUNS = %q }
  }
}
`, p, p, cmd[0], cmd[1], cmd[2], runs)
	}
	return b.String()
}

// TestCatchupAfterTheFleetWasDown: every node stops for longer than the agenda's horizon,
// so some missed occurrences were in the agenda already and the others are planned late;
// once the nodes are back, none, latest and all do what they say, and every occurrence due
// meanwhile that did not run is in history as missed.
func TestCatchupAfterTheFleetWasDown(t *testing.T) {
	t.Parallel()
	f := newFleet(t, catchupJobs)
	f.start("a")
	f.start("b")
	testwait.For(t, 20*time.Second, "runs of every job", func() bool {
		seen := map[string]bool{}
		for _, e := range f.events() {
			job, _ := dueOf(t, e.Occurrence)
			seen[job] = true
		}
		return len(seen) == 3
	})
	for _, n := range []string{"a", "b"} {
		if err := f.nodes[n].Stop(15 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	stoppedAt := time.Now()
	testwait.For(t, 30*time.Second, "the fleet to be down 13s", func() bool { return time.Since(stoppedAt) > 13*time.Second })
	restartAt := time.Now()
	f.start("a2")
	f.start("b2")
	// The occurrences that surely fell due while no node ran.
	var down []time.Time
	for s := stoppedAt.Add(time.Second).Truncate(time.Second); s.Before(restartAt.Add(-time.Second)); s = s.Add(time.Second) {
		down = append(down, s)
	}
	final := func(job string, due time.Time) []queue.Status { return f.finals(job)[occ(job, due)] }
	testwait.For(t, 30*time.Second, "a record of every occurrence due while the fleet was down", func() bool {
		for _, job := range []string{"none", "latest", "all"} {
			for _, d := range down {
				if len(final(job, d)) == 0 {
					return false
				}
			}
		}
		return true
	})
	started := starts(f.events())
	for _, job := range []string{"none", "latest", "all"} {
		var ran []string
		for i, d := range down {
			st := final(job, d)
			n := len(started[occ(job, d)])
			switch {
			case len(st) != 1:
				t.Errorf("%s: records %v, want one", occ(job, d), st)
			case st[0] == queue.StatusSucceeded && n == 1:
				ran = append(ran, occ(job, d))
			case st[0] == queue.StatusMissed && n == 0:
			default:
				t.Errorf("%s: record %v, started %d times", occ(job, d), st, n)
			}
			if job == "latest" && st[0] == queue.StatusSucceeded && i != len(down)-1 {
				t.Errorf("%s ran under latest, but a later one was due too", occ(job, d))
			}
		}
		t.Logf("%s: %d of the %d occurrences due while the fleet was down ran", job, len(ran), len(down))
		switch {
		case job == "none" && len(ran) > 0:
			t.Errorf("none: %v ran", ran)
		case job == "latest" && len(ran) > 1:
			t.Errorf("latest: %v ran, want at most the newest", ran)
		case job == "latest":
			// Each was missed because a later one was due too; the newest of them ran.
			var newest time.Time
			for _, r := range f.history("e2e", job) {
				if r.Status == queue.StatusMissed {
					if !strings.Contains(r.Error, "a later occurrence is due too (catchup latest)") {
						t.Errorf("%s missed: %q", r.Occurrence, r.Error)
					}
					if _, due := dueOf(t, r.Occurrence); due.After(newest) {
						newest = due
					}
				}
			}
			if st := final(job, newest.Add(time.Second)); !slices.Equal(st, []queue.Status{queue.StatusSucceeded}) {
				t.Errorf("latest: the occurrence after the newest missed one, %s, has records %v; want it run", occ(job, newest.Add(time.Second)), st)
			}
		case job == "all" && len(ran) != len(down):
			t.Errorf("all: %d of %d ran", len(ran), len(down))
		}
	}
}

// occ is the occurrence id of job due at due.
func occ(job string, due time.Time) string { return cron.OccurrenceID(job, due) }
