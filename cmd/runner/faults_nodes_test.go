//go:build faults

package main_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/redistest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// Scenarios of faults of the nodes: killed, frozen, cut off, wrong clocks.

// retry5 lets a run be retried or taken over up to five times, and lets the occurrences of
// a job overlap: a fault delays a takeover past the job's next occurrence, which under the
// default overlap policy (skip) would be skipped by design, not missed.
const retry5 = "  overlap = \"allow\"\n  retry {\n    attempts = 5\n  }"

// waitDone waits until every occurrence of n jobs due in [from, to] has an accepted done.
func (f *faultFleet) waitDone(n int, from, to time.Time, step time.Duration, timeout time.Duration) {
	f.t.Helper()
	var missing []string
	ok := testwait.Until(timeout, throttled(func() bool {
		done := map[string]bool{}
		for _, w := range f.s.writes(f.t) {
			if w.accepted && w.kind == "done" {
				done[w.occurrence] = true
			}
		}
		missing = missing[:0]
		for i := range n {
			for at := from; !at.After(to); at = at.Add(step) {
				if occ := cron.OccurrenceID(fmt.Sprintf("job-%03d", i), at); !done[occ] {
					missing = append(missing, occ)
				}
			}
		}
		return len(missing) == 0
	}))
	if !ok {
		f.t.Logf("%d occurrences not done after %s, first %v", len(missing), timeout, missing[:min(len(missing), 10)])
	}
}

// throttled is cond asked at most every quarter second: reading the sink's log is not free,
// and the machine runs the fleet too.
func throttled(cond func() bool) func() bool {
	var last time.Time
	return func() bool {
		if time.Since(last) < 250*time.Millisecond {
			return false
		}
		last = time.Now()
		return cond()
	}
}

// holder is the node of the newest accepted write: the one running something now.
func (f *faultFleet) holder() string {
	ws := f.s.writes(f.t)
	for i := len(ws) - 1; i >= 0; i-- {
		if ws[i].accepted {
			return ws[i].node
		}
	}
	return ""
}

// scenarioKillLoop SIGKILLs the node running a handler every few seconds, and restarts
// it: nothing is run twice, nothing is missed.
func scenarioKillLoop(t *testing.T, s *suite) {
	const jobs = 4
	srv := redistest.Start(t, "--appendonly", "yes")
	f := s.fleetOf(t, s.probeJobs(jobs, "* * * * * *", 400*time.Millisecond, 2*time.Second, retry5))
	for _, n := range []string{"a", "b", "c"} {
		f.start(n, srv.URL())
	}
	from := nextSecond(time.Now(), time.Second)
	end := from.Add(24 * time.Second)
	var killed []time.Time
	for next := from.Add(1500 * time.Millisecond); next.Before(end); next = next.Add(3 * time.Second) {
		<-time.After(time.Until(next)) // the fault's schedule
		name := f.holder()
		if name == "" {
			continue
		}
		n := f.nodes[name]
		if err := n.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed = append(killed, time.Now())
		_ = n.Wait(10 * time.Second)
		f.start(name, srv.URL())
	}
	to := end.Add(-time.Second)
	f.waitDone(jobs, from, to, time.Second, 60*time.Second)
	fg := f.check(jobs, from, to, time.Second, killed)
	fg.leaked = f.stopAll()
	fg.note = fmt.Sprintf("%d kills", len(killed))
	s.report(t, fg)
	if fg.stale != 0 || fg.missed != 0 {
		t.Errorf("stale writes %d, missed %d: want 0", fg.stale, fg.missed)
	}
}

// stopHolder runs one long occurrence on three nodes, SIGSTOPs the runner of its holder
// (its plugin runs on) for twice the lease, resumes it, and returns the figures.
func stopHolder(t *testing.T, s *suite, env ...string) figures {
	const lease = 2 * time.Second
	srv := redistest.Start(t)
	f := s.fleetOf(t, s.probeJobs(1, "*/15 * * * * *", 6*time.Second, lease, retry5))
	for _, n := range []string{"a", "b", "c"} {
		f.start(n, srv.URL(), env...)
	}
	var first sinkWrite
	testwait.For(t, 30*time.Second, "a run to start", func() bool {
		ws := s.writes(t)
		if len(ws) > 0 && ws[0].accepted {
			first = ws[0]
		}
		return len(ws) > 0
	})
	victim := f.nodes[first.node]
	if err := victim.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	<-time.After(2 * lease) // the fault: frozen for twice the lease
	if err := victim.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	_, due, err := cron.ParseOccurrenceID(first.occurrence)
	if err != nil {
		t.Fatal(err)
	}
	f.waitDone(1, due, due, 15*time.Second, 30*time.Second)
	fg := f.check(1, due, due, 15*time.Second, nil)
	fg.leaked = f.stopAll()
	return fg
}

// scenarioStop: the frozen runner's handler stops at its fence, before another node takes
// the occurrence over: the sink refuses no write of it.
func scenarioStop(t *testing.T, s *suite) {
	fg := stopHolder(t, s)
	s.report(t, fg)
	if fg.stale != 0 || fg.missed != 0 {
		t.Errorf("stale writes %d, missed %d: want 0", fg.stale, fg.missed)
	}
}

// scenarioStopUnfenced is the negative control of scenarioStop: with self-fencing off, the
// frozen runner's handler writes on after the takeover, and the checker must see it.
func scenarioStopUnfenced(t *testing.T, s *suite) {
	fg := stopHolder(t, s, "CRONFLEET_TEST_DISABLE_SELF_FENCE=1")
	fg.note = "(negative control: stale writes expected)"
	s.report(t, fg)
	if fg.stale == 0 {
		t.Error("no stale write with self-fencing off: the checker cannot see what self-fencing prevents")
	}
}

// scenarioCut cuts node a from Redis for 30 seconds (a blackhole: its connections hang):
// its runs are fenced before their leases can expire, the others take them over, and it
// rejoins within seconds, having logged the outage once.
func scenarioCut(t *testing.T, s *suite) {
	const jobs = 4
	srv := redistest.Start(t)
	p := startProxy(t, srv.Addr())
	f := s.fleetOf(t, s.probeJobs(jobs, "* * * * * *", 400*time.Millisecond, 2*time.Second, retry5))
	f.rdb = srv.Client(t)
	a := f.start("a", p.URL())
	f.start("b", srv.URL())
	f.start("c", srv.URL())
	from := nextSecond(time.Now(), time.Second)
	testwait.For(t, 20*time.Second, "node a to run something", throttled(func() bool { return ranOn(s.writes(t), "a") }))
	p.set(blackhole, 0)
	cut := time.Now()
	<-time.After(30 * time.Second) // the fault: cut for 30s
	p.set(pass, 0)
	back := time.Now()
	testwait.For(t, 15*time.Second, "node a to run again after the cut", throttled(func() bool {
		for _, w := range s.writes(t) {
			if w.node == "a" && w.accepted && w.at.After(back) {
				return true
			}
		}
		return false
	}))
	rejoined := time.Since(back)
	to := back.Add(3 * time.Second).Truncate(time.Second)
	f.waitDone(jobs, from, to, time.Second, 30*time.Second)
	fg := f.check(jobs, from, to, time.Second, []time.Time{cut})
	log := a.Log()
	fg.leaked = f.stopAll()
	fg.note = fmt.Sprintf("cut %s, rejoined %s after", back.Sub(cut).Round(time.Second), rejoined.Round(100*time.Millisecond))
	s.report(t, fg)
	if fg.stale != 0 || fg.missed != 0 {
		t.Errorf("stale writes %d, missed %d: want 0", fg.stale, fg.missed)
	}
	if n := strings.Count(log, "redis unreachable; retrying"); n != 1 {
		t.Errorf("node a logged the outage %d times, want once", n)
	}
	if n := strings.Count(log, "redis answering again"); n != 1 {
		t.Errorf("node a logged the end of the outage %d times, want once", n)
	}
}

// ranOn says whether node ran anything yet.
func ranOn(ws []sinkWrite, node string) bool {
	for _, w := range ws {
		if w.node == node && w.accepted {
			return true
		}
	}
	return false
}

// scenarioSkew runs a fleet whose nodes' clocks are 30 seconds ahead and 30 seconds
// behind: Redis' clock decides, so nothing runs early and nothing twice.
func scenarioSkew(t *testing.T, s *suite) {
	const jobs = 4
	srv := redistest.Start(t)
	f := s.fleetOf(t, s.probeJobs(jobs, "* * * * * *", 300*time.Millisecond, 2*time.Second, retry5))
	f.start("ahead", srv.URL(), "CRONFLEET_TEST_CLOCK_SKEW=30s")
	f.start("behind", srv.URL(), "CRONFLEET_TEST_CLOCK_SKEW=-30s")
	from := nextSecond(time.Now(), 2*time.Second)
	to := from.Add(15 * time.Second)
	f.waitDone(jobs, from, to, time.Second, 45*time.Second)
	fg := f.check(jobs, from, to, time.Second, nil)
	fg.leaked = f.stopAll()
	s.report(t, fg)
	if fg.stale != 0 || fg.missed != 0 {
		t.Errorf("stale writes %d, missed %d: want 0", fg.stale, fg.missed)
	}
}
