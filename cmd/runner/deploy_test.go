package main_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/redistest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// The tests in this file run the fleet on the Redis deployments operators scale out to,
// given to the nodes as the URLs the README documents: a Redis Cluster, resharded while the
// fleet runs, and a Sentinel set whose master dies.

const deployJobs = 12

// deployFleet starts three nodes on url with deployJobs jobs every second, each with catch-up
// "all" and overlap "allow": every occurrence must run, once, even when late.
func deployFleet(t *testing.T, url string, rdb redis.UniversalClient) *fleet {
	t.Helper()
	f := newFleetOn(t, url, rdb, recordJobsLease(deployJobs, "* * * * * *", 0, "  catchup = \"all\"\n  overlap = \"allow\"", 3*time.Second))
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}
	testwait.For(t, 20*time.Second, "runs to begin", func() bool { return len(f.events()) > 6*deployJobs })
	return f
}

// checkNoRedisErrors: the nodes followed the deployment's redirections and failovers without
// a script failing on keys of several slots.
func (f *fleet) checkNoRedisErrors(t *testing.T) {
	t.Helper()
	f.logWarnings(t)
	for _, n := range f.nodes {
		for _, bad := range []string{"CROSSSLOT", "MOVED", "ASK ", "TRYAGAIN", "level=ERROR msg=\"run"} {
			if c := strings.Count(n.Log(), bad); c > 0 {
				t.Errorf("node %s logged %q %d times", n.Name, bad, c)
			}
		}
	}
}

// logWarnings logs what the nodes warned of, for the reader of a test's output.
func (f *fleet) logWarnings(t *testing.T) {
	t.Helper()
	for _, n := range f.nodes {
		for l := range strings.Lines(n.Log()) {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				t.Logf("node %s: %s", n.Name, strings.TrimSpace(l))
			}
		}
	}
}

func TestFleetOnRedisCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	f := deployFleet(t, c.URL(), c.Client(t))
	begun := time.Now()

	// The jobs' agenda shards live on at least two masters: the cluster shares the load.
	owners := map[int][]int{} // master → shards
	shardSlot := map[int]int{}
	for i := range deployJobs {
		s := queue.ShardOf(fmt.Sprintf("job-%03d", i))
		if _, ok := shardSlot[s]; ok {
			continue
		}
		shardSlot[s] = redistest.KeySlot(fmt.Sprintf("{cf:e2e:%d}:agenda", s))
		m := c.SlotOwner(t, shardSlot[s])
		owners[m] = append(owners[m], s)
	}
	if len(owners) < 2 {
		t.Errorf("the jobs' shards all live on one master: %v", owners)
	}
	t.Logf("shards by master: %v", owners)

	// Reshard while the fleet runs: move the slot of every shard of job-000's master to the
	// next master, one at a time, keys and all.
	from := c.SlotOwner(t, shardSlot[queue.ShardOf("job-000")])
	moved := slices.Sorted(slices.Values(owners[from]))
	for _, s := range moved {
		c.MigrateSlot(t, shardSlot[s], (from+1)%3)
	}
	resharded := time.Now()
	for _, s := range moved {
		if got := c.SlotOwner(t, shardSlot[s]); got != (from+1)%3 {
			t.Fatalf("shard %d's slot is on master %d after the migration, want %d", s, got, (from+1)%3)
		}
	}

	start := begun.Add(time.Second).Truncate(time.Second)
	end := resharded.Add(4 * time.Second).Truncate(time.Second)
	f.waitAllStarted(deployJobs, start, end, 40*time.Second)
	checkHealthyRuns(t, f.events(), deployJobs, start, end, false)
	f.checkNoRedisErrors(t)
}

func TestFleetOnRedisSentinelFailover(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t)
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.Name(), SentinelAddrs: s.SentinelAddrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	f := deployFleet(t, s.URL(), rdb)

	master := s.Master()
	master.Kill()
	killed := time.Now()
	promoted := s.WaitFailover(t, master, 30*time.Second)
	failedOver := time.Now()
	t.Logf("failover from %s to %s took %v", master.Addr(), promoted.Addr(), failedOver.Sub(killed).Round(time.Millisecond))

	from := killed.Add(-2 * time.Second).Truncate(time.Second)
	to := failedOver.Add(6 * time.Second).Truncate(time.Second)
	f.waitAllStarted(deployJobs, from, to, 60*time.Second)
	ev := f.events()
	checkHealthyRuns(t, ev, deployJobs, from, to, false)
	checkTokensGrow(t, ev, killed, failedOver.Add(4*time.Second))
	f.logWarnings(t)
}

// TestFleetOnSentinelFailoverToStaleReplica: the replica falls behind (it is frozen) while
// the fleet runs, then the master dies and the sentinels promote the replica, which never saw
// the last seconds of writes. The nodes detect that Redis went back, and nothing runs twice.
func TestFleetOnSentinelFailoverToStaleReplica(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t)
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.Name(), SentinelAddrs: s.SentinelAddrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	f := deployFleet(t, s.URL(), rdb)

	master := s.Master()
	var replica *redistest.Server
	for _, srv := range s.Servers() {
		if srv != master {
			replica = srv
		}
	}
	// Frozen, and cut off: what the master sends from now on never reaches the replica
	// (what was in flight may still be in its socket).
	replica.Pause()
	if err := master.Client(t).ClientKillByFilter(t.Context(), "TYPE", "replica").Err(); err != nil {
		t.Fatalf("CLIENT KILL TYPE replica: %v", err)
	}
	frozen := time.Now()
	testwait.For(t, 10*time.Second, "two seconds of writes the replica misses", func() bool { return time.Since(frozen) > 2*time.Second })
	master.Kill()
	killed := time.Now()
	replica.Resume()
	if promoted := s.WaitFailover(t, master, 30*time.Second); promoted != replica {
		t.Fatalf("promoted %s, want the replica %s", promoted.Addr(), replica.Addr())
	}
	failedOver := time.Now()

	from := frozen.Add(-2 * time.Second).Truncate(time.Second)
	to := failedOver.Add(6 * time.Second).Truncate(time.Second)
	f.waitAllStarted(deployJobs, from, to, 60*time.Second)
	ev := f.events()
	checkHealthyRuns(t, ev, deployJobs, from, to, false)
	checkTokensGrow(t, ev, killed, failedOver.Add(4*time.Second))
	f.checkLossLogged(t)
}
