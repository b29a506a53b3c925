package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// One definition per job: a schedule changed by a reload takes effect from its next
// occurrence, and nodes whose files differ keep to the one loaded last.

const (
	even = "*/2 * * * * *"    // due on even seconds
	odd  = "1-59/2 * * * * *" // due on odd seconds
)

// ranOnce checks that every occurrence of job-000 due in [from, to] on the seconds that
// want says ran exactly once, and that none due on the other seconds ran.
func (f *fleet) ranOnce(t *testing.T, from, to time.Time, want func(sec int) bool) {
	t.Helper()
	byOcc := starts(f.events())
	for s := from.Truncate(time.Second); !s.After(to); s = s.Add(time.Second) {
		occ := occ("job-000", s)
		n := len(byOcc[occ])
		switch {
		case want(s.Second()) && n != 1:
			t.Errorf("%s started %d times, want once", occ, n)
		case !want(s.Second()) && n != 0:
			t.Errorf("%s started %d times, but it is not in the schedule in force", occ, n)
		}
	}
}

// TestScheduleChangeOnReload: both nodes reload a changed schedule; the new schedule's
// occurrences run from the next one on, each once, including those inside the horizon the
// old schedule had already planned, and the old schedule's stop.
func TestScheduleChangeOnReload(t *testing.T) {
	t.Parallel()
	f := newFleet(t, recordJobs(1, even, 0, ""))
	a, b := f.start("a"), f.start("b")
	testwait.For(t, 20*time.Second, "runs to begin", func() bool { return len(starts(f.events())) >= 2 })
	if err := os.WriteFile(f.conf, []byte(recordJobs(1, odd, 0, "")(f.runs)), 0o644); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 20*time.Second, "both nodes to reload", func() bool {
		return strings.Contains(a.Log(), "changed=1") && strings.Contains(b.Log(), "changed=1")
	})
	reloaded := time.Now()
	from, to := reloaded.Add(time.Second), reloaded.Add(8*time.Second)
	testwait.For(t, 30*time.Second, "the window after the change to pass", func() bool {
		return len(starts(f.events())) > 0 && time.Now().After(to.Add(3*time.Second))
	})
	f.ranOnce(t, from, to, func(s int) bool { return s%2 == 1 })
}

// TestNewestDefinitionWins: a node started later with another schedule for the same job
// puts its definition in force; the node with the older one says so, stops planning the
// job and leaves its runs to that node, so the fleet runs one schedule, each occurrence
// once. When that node leaves, the remaining node's definition takes over.
func TestNewestDefinitionWins(t *testing.T) {
	t.Parallel()
	f := newFleet(t, recordJobs(1, even, 0, ""))
	a := f.start("a")
	testwait.For(t, 20*time.Second, "runs to begin", func() bool { return len(starts(f.events())) >= 2 })
	other := filepath.Join(f.dir, "other.hcl")
	if err := os.WriteFile(other, []byte(recordJobs(1, odd, 0, "")(f.runs)), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := fleettest.StartNode(fleettest.NodeConfig{Bin: f.bin, Name: "b", Configs: []string{other}, RedisURL: f.redis.URL(), LogPath: filepath.Join(f.dir, "b.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("log of node b:\n%s", tailOf(n.Log(), 40))
			t.Logf("log of node a:\n%s", tailOf(a.Log(), 40))
		}
	})
	testwait.For(t, 20*time.Second, "node a to yield to the newer definition", func() bool {
		return strings.Contains(a.Log(), "a newer definition of the job")
	})
	yielded := time.Now()
	from, to := yielded.Add(time.Second), yielded.Add(8*time.Second)
	testwait.For(t, 30*time.Second, "the window after it to pass", func() bool { return time.Now().After(to.Add(4 * time.Second)) })
	f.ranOnce(t, from, to, func(s int) bool { return s%2 == 1 })

	// The node with the definition in force goes: node a's own takes over.
	if err := n.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "node a to take the job over", func() bool {
		return strings.Contains(a.Log(), "this node's definition takes over")
	})
	took := time.Now()
	from, to = took.Add(time.Second), took.Add(6*time.Second)
	testwait.For(t, 30*time.Second, "the window after it to pass", func() bool { return time.Now().After(to.Add(3 * time.Second)) })
	f.ranOnce(t, from, to, func(s int) bool { return s%2 == 0 })
}
