package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// TestBadKeyStopsOnlyItsShard: a key of the wrong type in one agenda shard (a string over its
// sorted set) stops that shard's jobs alone: the others keep running, every second, on time;
// each node says once which shard and key are at fault, and once that the shard answers
// again after the key is deleted; then the shard's jobs run again.
func TestBadKeyStopsOnlyItsShard(t *testing.T) {
	t.Parallel()
	const jobs = 8
	f := newFleet(t, recordJobs(jobs, "* * * * * *", 0, "  catchup = \"none\""))
	f.start("a")
	f.start("b")
	testwait.For(t, 20*time.Second, "runs to begin", func() bool { return len(f.events()) > 4*jobs })

	badShard := queue.ShardOf("job-000")
	var others []int
	for i := range jobs {
		if queue.ShardOf(fmt.Sprintf("job-%03d", i)) != badShard {
			others = append(others, i)
		}
	}
	agenda := fmt.Sprintf("{cf:e2e:%d}:agenda", badShard)
	if err := f.rdb.Set(t.Context(), agenda, "not a sorted set", 0).Err(); err != nil {
		t.Fatal(err)
	}
	broken := time.Now()
	testwait.For(t, 20*time.Second, "four seconds with the bad key", func() bool { return time.Since(broken) > 4*time.Second })
	from, to := broken.Add(time.Second).Truncate(time.Second), broken.Add(3*time.Second).Truncate(time.Second)
	byOcc := starts(f.events())
	for _, i := range others {
		for s := from; !s.After(to); s = s.Add(time.Second) {
			occ := fmt.Sprintf("job-%03d@%s", i, s.UTC().Format("2006-01-02T15:04:05.000Z"))
			if ss := byOcc[occ]; len(ss) != 1 || ss[0].At.Sub(s) > time.Second {
				t.Errorf("%s of a healthy shard: starts %+v, want one within a second of its due time", occ, ss)
			}
		}
	}
	for _, n := range f.nodes {
		if c := strings.Count(n.Log(), "an agenda shard refused calls"); c != 1 || !strings.Contains(n.Log(), agenda) {
			t.Errorf("node %s logged the shard's fault %d times (naming %s: %v), want once", n.Name, c, agenda, strings.Contains(n.Log(), agenda))
		}
		if strings.Contains(n.Log(), "redis unreachable") {
			t.Errorf("node %s took the shard's fault for an outage of Redis", n.Name)
		}
	}

	if err := f.rdb.Del(t.Context(), agenda).Err(); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	testwait.For(t, 20*time.Second, "the shard's jobs to run again", func() bool {
		for _, e := range f.events() {
			if e.Kind == "start" && strings.HasPrefix(e.Occurrence, "job-000@") && e.At.After(fixed) {
				return true
			}
		}
		return false
	})
	for _, n := range f.nodes {
		testwait.For(t, 10*time.Second, "node "+n.Name+" to log the shard answering again", func() bool {
			return strings.Contains(n.Log(), "an agenda shard answers again")
		})
	}
}
