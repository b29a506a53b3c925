package redistest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	err := poll(ctx, 5*time.Millisecond, func(context.Context) error {
		if !cond() {
			return fmt.Errorf("not yet: %s", what)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// redirectCounter counts the redirections nodes answer, before the cluster client follows them.
type redirectCounter struct{ ask, moved atomic.Int64 }

func (r *redirectCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *redirectCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil {
			switch msg := err.Error(); {
			case strings.HasPrefix(msg, "ASK "):
				r.ask.Add(1)
			case strings.HasPrefix(msg, "MOVED "):
				r.moved.Add(1)
			}
		}
		return err
	}
}

func (r *redirectCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func TestServerKillRestart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if err := s.ping(); err != nil {
		t.Fatalf("ping after Start: %v", err)
	}
	s.Kill()
	if err := s.ping(); err == nil {
		t.Fatal("ping after Kill succeeded")
	}
	port := s.Port()
	s.Restart()
	if err := s.ping(); err != nil {
		t.Fatalf("ping after Restart: %v", err)
	}
	if s.Port() != port {
		t.Errorf("port after Restart = %d, want %d", s.Port(), port)
	}
}

func TestClusterPort(t *testing.T) {
	t.Parallel()
	for range 20 {
		p, err := clusterPort()
		if err != nil {
			t.Fatal(err)
		}
		if p < 1024 || p+busOffset > 65535 {
			t.Fatalf("clusterPort() = %d: it or its bus port %d is out of range", p, p+busOffset)
		}
	}
}

func TestCRC16(t *testing.T) {
	t.Parallel()
	// The check value of CRC-16/XMODEM, which the Redis Cluster specification quotes.
	if got := crc16("123456789"); got != 0x31c3 {
		t.Errorf("crc16(%q) = %#x, want 0x31c3", "123456789", got)
	}
}

func TestKeySlot(t *testing.T) {
	t.Parallel()
	rdb := startClusterNode(t).Client(t)
	keys := []string{
		"", "foo", "123456789", "user1000",
		"{user1000}.following", "{user1000}.followers", // the specification's example: one slot
		"foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", // ditto for its edge cases
		"{", "}", "{}", "}{", "a{b", "a}b{c}", "{cronfleet:job}:due",
		"ключ", "\x00\xff\x80",
	}
	for _, key := range keys {
		t.Run(strconv.Quote(key), func(t *testing.T) {
			want, err := rdb.ClusterKeySlot(t.Context(), key).Result()
			if err != nil {
				t.Fatalf("CLUSTER KEYSLOT: %v", err)
			}
			if got := KeySlot(key); got != int(want) {
				t.Errorf("KeySlot(%q) = %d, CLUSTER KEYSLOT says %d", key, got, want)
			}
		})
	}
}

func FuzzKeySlot(f *testing.F) {
	f.Add("job", "prefix:", ":suffix")
	f.Add("a", "", "}{x}")
	f.Fuzz(func(t *testing.T, tag, prefix, suffix string) {
		key := prefix + "{" + tag + "}" + suffix
		if got := KeySlot(key); got < 0 || got >= clusterSlots {
			t.Fatalf("KeySlot(%q) = %d, out of range", key, got)
		}
		if tag == "" || strings.ContainsRune(prefix, '{') || strings.ContainsRune(tag, '}') {
			return // the hash tag is not tag
		}
		if got, want := KeySlot(key), KeySlot(tag); got != want {
			t.Errorf("KeySlot(%q) = %d, want KeySlot(%q) = %d", key, got, tag, want)
		}
	})
}

func TestClusterMigrateSlotUnderWrites(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := StartCluster(t, 3)
	t.Logf("cluster up in %v", time.Since(start))
	nodes := c.Nodes()
	wantURL := "redis-cluster://" + nodes[0].Addr() + "," + nodes[1].Addr() + "," + nodes[2].Addr()
	if diff := cmp.Diff(wantURL, c.URL()); diff != "" {
		t.Errorf("URL (-want +got):\n%s", diff)
	}

	ctx := t.Context()
	rdb := c.Client(t)
	var redirects redirectCounter
	rdb.OnNewNode(func(n *redis.Client) { n.AddHook(&redirects) })
	const tag = "{cfmigrate}"
	slot := KeySlot(tag)
	from := c.SlotOwner(t, slot)
	to := (from + 1) % len(nodes)

	// Keys already in the slot, so that the migration takes several batches.
	const preloaded = 1000
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range preloaded {
			p.Set(ctx, fmt.Sprintf("%s:pre:%d", tag, i), i, 0)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("preload: %v", err)
	}

	const writers = 4
	var (
		wg      sync.WaitGroup
		written atomic.Int64
		stop    = make(chan struct{})
		counts  [writers]int
		errs    [writers]error
	)
	for w := range writers {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					counts[w] = n
					return
				default:
				}
				if err := rdb.Set(ctx, fmt.Sprintf("%s:w%d:%d", tag, w, n), n, 0).Err(); err != nil {
					counts[w], errs[w] = n, err
					return
				}
				written.Add(1)
			}
		})
	}
	stopWriters := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriters()

	waitFor(t, 10*time.Second, "writers under way", func() bool { return written.Load() >= 100 })
	before := written.Load()
	c.MigrateSlot(t, slot, to)
	after := written.Load()
	// Writers carry on after the move: the old owner now answers them MOVED.
	waitFor(t, 10*time.Second, "writes after the migration", func() bool { return written.Load() >= after+100 })
	stopWriters()
	t.Logf("%d writes during the migration; %d ASK, %d MOVED", after-before, redirects.ask.Load(), redirects.moved.Load())
	if redirects.ask.Load()+redirects.moved.Load() == 0 {
		t.Error("no writer met ASK or MOVED: the test did not exercise the move")
	}

	for w, err := range errs {
		if err != nil {
			t.Errorf("writer %d after %d writes: %v", w, counts[w], err)
		}
	}
	if got := c.SlotOwner(t, slot); got != to {
		t.Errorf("SlotOwner(%d) = %d after MigrateSlot to %d (from %d)", slot, got, to, from)
	}

	want := map[string]string{}
	for i := range preloaded {
		want[fmt.Sprintf("%s:pre:%d", tag, i)] = strconv.Itoa(i)
	}
	for w, n := range counts {
		for i := range n {
			want[fmt.Sprintf("%s:w%d:%d", tag, w, i)] = strconv.Itoa(i)
		}
	}
	got := map[string]string{}
	for key := range want {
		v, err := rdb.Get(ctx, key).Result()
		if err != nil {
			v = "error: " + err.Error()
		}
		got[key] = v
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys after the migration (-want +got):\n%s", diff)
	}
	for i, n := range nodes {
		count, err := n.Client(t).ClusterCountKeysInSlot(ctx, slot).Result()
		if err != nil {
			t.Fatalf("countkeysinslot on %s: %v", n.Addr(), err)
		}
		wantCount := 0
		if i == to {
			wantCount = len(want)
		}
		if int(count) != wantCount {
			t.Errorf("node %d holds %d keys of slot %d, want %d", i, count, slot, wantCount)
		}
	}
}

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := StartSentinel(t, "--appendonly", "yes")
	t.Logf("sentinels ready in %v", time.Since(start))
	servers := s.Servers()
	sa := s.SentinelAddrs()
	wantURL := "redis-sentinel://" + strings.Join(sa, ",") + "/0?master=cfmaster"
	if diff := cmp.Diff(wantURL, s.URL()); diff != "" {
		t.Errorf("URL (-want +got):\n%s", diff)
	}
	old := s.Master()
	if old != servers[0] {
		t.Fatalf("Master() = %s, want the first server %s", old.Addr(), servers[0].Addr())
	}

	ctx := t.Context()
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.Name(), SentinelAddrs: sa})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatalf("set before the failover: %v", err)
	}
	// Replication is asynchronous: only a write the replica acknowledged survives for sure.
	if n, err := rdb.Do(ctx, "wait", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want 1 replica", n, err)
	}

	killed := time.Now()
	old.Kill()
	got := s.WaitFailover(t, old, 15*time.Second)
	t.Logf("failover in %v", time.Since(killed))
	if got != servers[1] {
		t.Fatalf("WaitFailover = %s, want the replica %s", got.Addr(), servers[1].Addr())
	}
	if m := s.Master(); m != got {
		t.Errorf("Master() = %s after the failover, want %s", m.Addr(), got.Addr())
	}
	if err := rdb.Set(ctx, "after", "2", 0).Err(); err != nil {
		t.Fatalf("set after the failover: %v", err)
	}
	v, err := got.Client(t).Get(ctx, "before").Result()
	if err != nil || v != "1" {
		t.Errorf("before = %q, %v on the new master; want %q", v, err, "1")
	}
}

func TestClusterKillMasterUnderWrites(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := StartClusterWithReplicas(t, 3, 1)
	t.Logf("3 masters and 3 replicas up in %v", time.Since(start))
	nodes := c.Nodes()
	if len(nodes) != 6 {
		t.Fatalf("%d nodes, want 6", len(nodes))
	}
	masters := c.Masters(t)
	if len(masters) != 3 {
		t.Fatalf("Masters() = %v, want 3 masters", masters)
	}

	ctx := t.Context()
	rdb := c.Client(t)
	const tag = "{cffailover}"
	slot := KeySlot(tag)
	victim := c.SlotOwner(t, slot)
	if !slices.Contains(masters, victim) {
		t.Fatalf("SlotOwner(%d) = %d, not one of the masters %v", slot, victim, masters)
	}
	// Replication is asynchronous: only a write the replica acknowledged survives for sure.
	vc := nodes[victim].Client(t)
	if err := vc.Set(ctx, tag+":before", "1", 0).Err(); err != nil {
		t.Fatalf("set before the failover: %v", err)
	}
	if n, err := vc.Do(ctx, "wait", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want 1 replica", n, err)
	}

	const writers = 4
	var (
		wg       sync.WaitGroup
		written  atomic.Int64
		failed   atomic.Int64
		stop     = make(chan struct{})
		firstErr [writers]error
	)
	for w := range writers {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				// While the master is dead, writes into its slots fail; the writers carry
				// on, as a runner does, and must succeed again once a replica took over.
				if err := rdb.Set(ctx, fmt.Sprintf("%s:w%d:%d", tag, w, n), n, 0).Err(); err != nil {
					if failed.Add(1); firstErr[w] == nil {
						firstErr[w] = err
					}
					continue
				}
				written.Add(1)
			}
		})
	}
	stopWriters := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriters()

	waitFor(t, 10*time.Second, "writers under way", func() bool { return written.Load() >= 100 })
	killed := time.Now()
	promoted := c.KillMaster(t, victim)
	failedOver := time.Now()
	t.Logf("master %d killed, replica %d promoted in %v", victim, promoted, failedOver.Sub(killed))
	if promoted == victim || slices.Contains(masters, promoted) {
		t.Fatalf("KillMaster(%d) = %d, want one of the replicas, not a master of %v", victim, promoted, masters)
	}
	// go-redis (v9.23) sends a slot to the master it last heard of until a MOVED or ASK, or
	// until ClusterStateReloadInterval (60s by default) passes: a dead master answers
	// neither, so without a reload the writers would fail for a minute after the cluster has
	// recovered (https://github.com/redis/go-redis/issues/3979).
	rdb.ReloadState(ctx)
	after := written.Load()
	waitFor(t, 10*time.Second, "writes into the slot after the failover", func() bool { return written.Load() >= after+100 })
	t.Logf("writers back %v after the failover; %d writes failed", time.Since(failedOver), failed.Load())
	stopWriters()
	if failed.Load() == 0 {
		t.Error("no write failed: the test did not write through the failover")
	}
	for w, err := range firstErr {
		if err != nil {
			t.Logf("writer %d: first error: %v", w, err)
		}
	}

	if got := c.SlotOwner(t, slot); got != promoted {
		t.Errorf("SlotOwner(%d) = %d after the failover, want the promoted %d", slot, got, promoted)
	}
	want := append(slices.DeleteFunc(slices.Clone(masters), func(m int) bool { return m == victim }), promoted)
	slices.Sort(want)
	if diff := cmp.Diff(want, c.Masters(t)); diff != "" {
		t.Errorf("Masters() after the failover (-want +got):\n%s", diff)
	}
	if v, err := rdb.Get(ctx, tag+":before").Result(); err != nil || v != "1" {
		t.Errorf("GET %s:before = %q, %v after the failover; want %q", tag, v, err, "1")
	}

	// The promoted master hands the slot on like any other, though replicas and a dead node
	// are about: they take no part in a migration.
	to := want[0]
	if to == promoted {
		to = want[1]
	}
	c.MigrateSlot(t, slot, to)
	if v, err := rdb.Get(ctx, tag+":before").Result(); err != nil || v != "1" {
		t.Errorf("GET %s:before = %q, %v after migrating the slot to %d; want %q", tag, v, err, to, "1")
	}
}
