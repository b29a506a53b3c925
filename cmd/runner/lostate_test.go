package main_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// The tests in this file make the fleet's Redis lose state under a running fleet, as an
// operator's Redis would, and check every promise: nothing runs twice, the tokens keep
// growing, nothing is missed. Run them with CRONFLEET_TEST_DISABLE_GUARD=1 in the
// environment (the nodes inherit it) to see them fail without the lost-state guard.

const lossJobs = 8

// lossFleet is three nodes with a 3s lease running lossJobs jobs every second; catch-up
// "all" and overlap "allow", so every occurrence must run, once, even when late.
func lossFleet(t *testing.T, redisArgs ...string) *fleet {
	t.Helper()
	f := newFleet(t, recordJobsLease(lossJobs, "* * * * * *", 0, "  catchup = \"all\"\n  overlap = \"allow\"", 3*time.Second), redisArgs...)
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}
	testwait.For(t, 20*time.Second, "runs to begin", func() bool { return len(f.events()) > 8*lossJobs })
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range f.nodes { // what the nodes said besides their runs
			var lines []string
			for l := range strings.Lines(n.Log()) {
				run := strings.Contains(l, "msg=\"run started\"") || strings.Contains(l, "msg=\"run ended\"") && strings.Contains(l, " status=succeeded")
				if !run {
					lines = append(lines, l)
				}
			}
			t.Logf("node %s, without its run lines:\n%s", n.Name, tailOf(strings.Join(lines, ""), 80))
		}
	})
	if os.Getenv("CRONFLEET_TEST_DISABLE_GUARD") == "1" {
		t.Log("CRONFLEET_TEST_DISABLE_GUARD=1: the nodes run without the lost-state guard; this test should fail")
	}
	return f
}

// checkTokensGrow: every run claimed after the loss (started after the guard's hold) has a
// token above every token of its job handed out before it: a sink that fences by token
// accepts its writes.
func checkTokensGrow(t *testing.T, ev []fleettest.Event, before, after time.Time) {
	t.Helper()
	last := map[string]int64{}
	for _, e := range ev {
		if job, _ := dueOf(t, e.Occurrence); e.Kind == "start" && e.At.Before(before) {
			last[job] = max(last[job], e.Token)
		}
	}
	for _, e := range ev {
		if job, _ := dueOf(t, e.Occurrence); e.Kind == "start" && e.At.After(after) && e.Token <= last[job] {
			t.Errorf("%s started after the loss with token %d, not above %d handed out before it", e.Occurrence, e.Token, last[job])
		}
	}
}

// checkThrough: every occurrence of the first jobs due in [from, to] started once and never
// early, and every run started after settled has a token above all of its job's handed out
// before lost.
func (f *fleet) checkThrough(t *testing.T, jobs int, from, to, lost, settled time.Time) {
	t.Helper()
	f.waitAllStarted(jobs, from, to, 60*time.Second)
	ev := f.events()
	checkHealthyRuns(t, ev, jobs, from, to, false)
	checkTokensGrow(t, ev, lost, settled)
}

// checkLossLogged: each node said once, as such, that Redis lost state.
func (f *fleet) checkLossLogged(t *testing.T) {
	t.Helper()
	testwait.For(t, 20*time.Second, "every node to log the loss", func() bool {
		for _, n := range f.nodes {
			if !strings.Contains(n.Log(), "Redis lost state") {
				return false
			}
		}
		return true
	})
	for _, n := range f.nodes {
		if c := strings.Count(n.Log(), "Redis lost state"); c != 1 {
			t.Errorf("node %s logged the loss %d times, want once", n.Name, c)
		}
	}
}

func TestRedisRestartsEmpty(t *testing.T) {
	t.Parallel()
	f := lossFleet(t)
	killed := time.Now()
	f.redis.Kill()
	testwait.For(t, 10*time.Second, "half a second without Redis", func() bool { return time.Since(killed) > 500*time.Millisecond })
	f.redis.Restart() // no persistence: empty
	restarted := time.Now()

	f.checkThrough(t, lossJobs, killed.Add(-2*time.Second).Truncate(time.Second),
		restarted.Add(8*time.Second).Truncate(time.Second), killed, restarted.Add(4*time.Second))
	f.checkLossLogged(t)
}

func TestRedisRestoredFromOlderSnapshot(t *testing.T) {
	t.Parallel()
	f := lossFleet(t)
	if err := f.rdb.Save(t.Context()).Err(); err != nil {
		t.Fatalf("SAVE: %v", err)
	}
	saved := time.Now()
	// The fleet runs on for four seconds that the snapshot does not hold.
	testwait.For(t, 20*time.Second, "four seconds after the snapshot", func() bool { return time.Since(saved) > 4*time.Second })
	f.redis.Kill()
	f.redis.Restart() // loads the snapshot
	restarted := time.Now()

	from := saved.Add(-2 * time.Second).Truncate(time.Second)
	to := restarted.Add(8 * time.Second).Truncate(time.Second)
	f.checkThrough(t, lossJobs, from, to, restarted, restarted.Add(4*time.Second))
	f.checkLossLogged(t)
	// The history lost nothing either: the nodes wrote back the records of what they
	// completed after the snapshot.
	recs := map[string][]queue.Status{}
	for _, r := range f.history("e2e", "job-000") {
		recs[r.Occurrence] = append(recs[r.Occurrence], r.Status)
	}
	for s := from; !s.After(to.Add(-time.Second)); s = s.Add(time.Second) {
		occ := cron.OccurrenceID("job-000", s)
		if got := recs[occ]; len(got) != 1 || got[0] != queue.StatusSucceeded {
			t.Errorf("history of %s: %v, want one succeeded record", occ, got)
		}
	}
}
