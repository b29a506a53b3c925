package queue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/redistest"
)

// backend is one Redis the contract tests run against: miniredis (fast, fake clock) or a real
// redis-server (the truth, real clock). Each test gets its own backend and namespace.
type backend struct {
	name string
	rdb  *redis.Client
	mr   *miniredis.Miniredis // nil on a real server
	srv  *redistest.Server    // nil on miniredis
	ns   string
	// lease is the lease the contract tests use: long on miniredis, where time only moves
	// when told, and short on a real server, where tests wait it out.
	lease time.Duration
}

func newMiniredis(t testing.TB) *backend {
	t.Helper()
	mr := miniredis.RunT(t)
	// Freeze TIME (it follows the wall clock otherwise); clockTo moves it together with
	// the TTLs, as one Redis clock. An hour behind this machine's clock: what is due is
	// decided by Redis' clock alone, whatever the node's says.
	mr.SetTime(time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond))
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	return &backend{name: "miniredis", rdb: rdb, mr: mr, ns: namespace(t), lease: 30 * time.Second}
}

func newRedis(t testing.TB, args ...string) *backend {
	t.Helper()
	srv := redistest.Start(t, args...)
	// As cmd/runner does: without ContextTimeoutEnabled go-redis ignores the per-call
	// deadline for socket I/O, and CallTimeout would not bound a call to a stalled server.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	return &backend{name: "redis", rdb: rdb, srv: srv, ns: namespace(t), lease: 1500 * time.Millisecond}
}

// namespace is unique per test, so tests never see each other's keys even on one server.
func namespace(t testing.TB) string {
	r := strings.NewReplacer("/", ".", " ", "_", "{", "(", "}", ")")
	return fmt.Sprintf("%s.%x", r.Replace(t.Name()), rand.Uint32())
}

// contract runs test against each backend, in parallel subtests (most of a real server's
// test is waiting for its clock, so the tests run in parallel too).
func contract(t *testing.T, test func(t *testing.T, b *backend)) {
	t.Helper()
	t.Parallel()
	for _, nb := range []struct {
		name string
		new  func(*testing.T) *backend
	}{
		{"miniredis", func(t *testing.T) *backend { return newMiniredis(t) }},
		{"redis", func(t *testing.T) *backend { return newRedis(t) }},
	} {
		t.Run(nb.name, func(t *testing.T) {
			t.Parallel()
			test(t, nb.new(t))
		})
	}
}

// queue returns a new Queue ("node") of the backend's namespace. Zero fields of cfg take the
// backend's lease and a call timeout generous enough for a loaded -race run.
func (b *backend) queue(cfg Config) *Queue {
	if cfg.Namespace == "" {
		cfg.Namespace = b.ns
	}
	if cfg.Lease == 0 {
		cfg.Lease = b.lease
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	if cfg.SettleAfter == 0 {
		// Nor like an outage that suspends the leases: the tests' holders that stop renewing
		// are dead, not cut off.
		cfg.SettleAfter = 24 * time.Hour
	}
	if cfg.Away == 0 {
		// The tests move miniredis' clock by leaps: unless a test is about catch-up, a
		// leap must not look like a fleet that was away.
		cfg.Away = 24 * time.Hour
	}
	return New(b.rdb, cfg)
}

// now is Redis' clock, in whole milliseconds as the scripts count.
func (b *backend) now(t *testing.T) time.Time {
	t.Helper()
	now, err := b.rdb.Time(t.Context()).Result()
	if err != nil {
		t.Fatalf("TIME: %v", err)
	}
	return now.Truncate(time.Millisecond)
}

// clockTo moves Redis' clock to at least at: on miniredis by setting TIME and advancing the
// TTLs by the same amount, on a real server by polling TIME until it got there.
func (b *backend) clockTo(t *testing.T, at time.Time) {
	t.Helper()
	if b.mr != nil {
		if cur := b.now(t); at.After(cur) {
			b.mr.SetTime(at)
			b.mr.FastForward(at.Sub(cur))
		}
		return
	}
	deadline := time.Now().Add(time.Until(at) + 10*time.Second)
	for b.now(t).Before(at) {
		if time.Now().After(deadline) {
			t.Fatalf("Redis' clock did not reach %v", at)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition with a deadline
	}
}

// occID is an occurrence id in the house format: job, '@', scheduled time (UTC).
func occID(job string, due time.Time) string {
	return job + "@" + due.UTC().Format("2006-01-02T15:04:05.000Z")
}

// expansion builds the Expansion of job at dues. Its occurrences may overlap (allow): the
// tests of the overlap policies set theirs.
func expansion(job string, dues ...time.Time) Expansion {
	e := Expansion{Job: job, Policy: Policy{Overlap: OverlapAllow}}
	for _, d := range dues {
		d = d.Truncate(time.Millisecond)
		e.Due = append(e.Due, d)
		e.IDs = append(e.IDs, occID(job, d))
	}
	return e
}

// sameShard returns n job names (prefix-0, prefix-1, ...) that all live in one shard.
func sameShard(prefix string, n int) []string {
	var jobs []string
	shard := ShardOf(prefix + "-0")
	for i := 0; len(jobs) < n; i++ {
		if j := fmt.Sprintf("%s-%d", prefix, i); ShardOf(j) == shard {
			jobs = append(jobs, j)
		}
	}
	return jobs
}

func mustExpand(t *testing.T, q *Queue, exps ...Expansion) map[string]time.Time {
	t.Helper()
	res, err := q.Expand(t.Context(), exps)
	if err != nil {
		t.Fatalf("Expand: %v", err)
	}
	return res.Watermarks
}

// claim calls q.Claim with the deadline the engine would give it: Redis' clock plus the call
// timeout (miniredis' clock is an hour behind this machine's, see newMiniredis).
func (b *backend) claim(ctx context.Context, q *Queue, shards []int, max int) (Claimed, error) {
	now, err := b.rdb.Time(ctx).Result()
	if err != nil {
		return Claimed{}, err
	}
	return q.Claim(ctx, shards, max, 0, now.Add(q.CallTimeout()), nil)
}

func (b *backend) mustClaim(t *testing.T, q *Queue, shard, max int) Claimed {
	t.Helper()
	c, err := b.claim(t.Context(), q, []int{shard}, max)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return c
}

// claimDue moves Redis' clock to at and claims occ, which must be due by then. It returns the
// claim and two readings of Redis' clock that bound when the claim script ran: sent, read
// just before the call, and now, the reply's Claimed.Now (taken at the end of the script).
// The lock and the agenda score were set from TIME at the start of the script, so the
// lease's expiry lies in [sent+lease, now+lease]; which millisecond inside that window is
// not for a test to assume (the script may cross a millisecond, or Redis may be descheduled
// between its two TIME calls on a loaded machine).
// On miniredis the first claim must get it; on a real server a lock may outlive its agenda
// score by a millisecond, so it polls a little. Every claim it sees must be occ.
func (b *backend) claimDue(t *testing.T, q *Queue, occ string, at time.Time) (cl Claim, sent, now time.Time) {
	t.Helper()
	b.clockTo(t, at)
	shard := ShardOf(occ[:strings.LastIndexByte(occ, '@')])
	deadline := time.Now().Add(5 * time.Second)
	for {
		sent := b.now(t)
		c := b.mustClaim(t, q, shard, 10)
		for _, cl := range c.Claims {
			if cl.Occurrence != occ {
				t.Fatalf("claimed %s, want only %s", cl.Occurrence, occ)
			}
			if c.Now.Before(at) {
				t.Fatalf("claimed %s at Redis time %v, before %v", occ, c.Now, at)
			}
			// Scores are milliseconds; Claimed.Now has microseconds.
			return cl, sent, c.Now.Truncate(time.Millisecond)
		}
		if b.mr != nil || time.Now().After(deadline) {
			t.Fatalf("%s not claimable at Redis time %v (heads %v)", occ, c.Now, c.Heads)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
}

// claimNothing claims from shard and requires that nothing is claimed, as long as Redis'
// clock is still before until (after it the check would be meaningless, so it fails as too
// slow rather than pass).
func (b *backend) claimNothing(t *testing.T, q *Queue, shard int, until time.Time) Claimed {
	t.Helper()
	c := b.mustClaim(t, q, shard, 10)
	if !c.Now.Before(until) {
		t.Fatalf("test too slow: Redis' clock %v already passed %v", c.Now, until)
	}
	if len(c.Claims) > 0 {
		t.Fatalf("claimed %+v at Redis time %v, want nothing before %v", c.Claims, c.Now, until)
	}
	return c
}

func mustComplete(t *testing.T, q *Queue, cs ...Completion) []bool {
	t.Helper()
	ok, err := q.Complete(t.Context(), cs)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	return ok.Accepted
}

// history is job's history, newest first.
func (b *backend) history(t *testing.T, q *Queue, job string) []Record {
	t.Helper()
	recs, err := q.History(t.Context(), job, 100)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	return recs
}

// score is occ's agenda score: when it may next be claimed.
func (b *backend) score(t *testing.T, q *Queue, occ string) time.Time {
	t.Helper()
	s, err := b.rdb.ZScore(t.Context(), q.keys(ShardOf(occ[:strings.LastIndexByte(occ, '@')])).agenda(), occ).Result()
	if err != nil {
		t.Fatalf("ZSCORE %s: %v", occ, err)
	}
	return time.UnixMilli(int64(s))
}

// zcard is the size of a shard's agenda.
func (b *backend) zcard(t *testing.T, q *Queue, shard int) int64 {
	t.Helper()
	n, err := b.rdb.ZCard(t.Context(), q.keys(shard).agenda()).Result()
	if err != nil {
		t.Fatalf("ZCARD: %v", err)
	}
	return n
}
