package queue

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/lease"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// TestClaimIdempotent runs one claim script call twice, as go-redis does when a reply is lost:
// the second run must answer the first's reply and change nothing.
func TestClaimIdempotent(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		jobs := sameShard("idem", 2)
		shard := ShardOf(jobs[0])
		due := b.now(t).Add(b.lease / 3)
		mustExpand(t, q, expansion(jobs[0], due, due.Add(time.Millisecond)), expansion(jobs[1], due))
		b.clockTo(t, due.Add(time.Millisecond))

		k := q.keys(shard)
		deadline := b.now(t).Add(time.Minute) // the re-sent call is not late
		c := q.claimCall(claimRequest{shard: shard, id: "resent", max: 10, deadline: deadline})
		state := func() []any {
			t.Helper()
			ctx := t.Context()
			fence, err1 := b.rdb.HGetAll(ctx, k.fence()).Result()
			attempts, err2 := b.rdb.HGetAll(ctx, k.attempts()).Result()
			agenda, err3 := b.rdb.ZRangeWithScores(ctx, k.agenda(), 0, -1).Result()
			if err := errors.Join(err1, err2, err3); err != nil {
				t.Fatalf("read shard state: %v", err)
			}
			return []any{fence, attempts, agenda}
		}

		sent := b.now(t) // the leases below were taken no earlier than this
		first, err := q.evalAll(t.Context(), []call{c})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		before := state()
		b.clockTo(t, b.now(t).Add(50*time.Millisecond)) // the re-sent call arrives later
		second, err := q.evalAll(t.Context(), []call{c})
		if err != nil {
			t.Fatalf("re-sent claim: %v", err)
		}
		if diff := cmp.Diff(first, second); diff != "" {
			t.Errorf("re-sent claim reply (-first +second):\n%s", diff)
		}
		if diff := cmp.Diff(before, state()); diff != "" {
			t.Errorf("shard state changed by the re-sent claim (-before +after):\n%s", diff)
		}
		var got Claimed
		got.Heads = map[int]time.Time{}
		if err := q.parseClaimReply(first[0].(string), shard, &got); err != nil {
			t.Fatalf("parse reply: %v", err)
		}
		if len(got.Claims) != 3 {
			t.Errorf("first claim got %d occurrences, want 3: %+v", len(got.Claims), got.Claims)
		}
		// got.Now is read at the end of the script, the leases were taken at its start.
		b.claimNothing(t, q, shard, sent.Add(q.cfg.Lease))
	})
}

// TestCheckEviction: an evicted lock or watermark would let an occurrence run twice, so any
// server that may evict keys is refused.
func TestCheckEviction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"allkeys-lru with maxmemory", []string{"--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru"}, ErrEviction},
		// The locks and markers have TTLs: volatile policies evict exactly them.
		{"volatile-lru with maxmemory", []string{"--maxmemory", "10mb", "--maxmemory-policy", "volatile-lru"}, ErrEviction},
		{"noeviction with maxmemory", []string{"--maxmemory", "10mb", "--maxmemory-policy", "noeviction"}, nil},
		{"no maxmemory", nil, nil},
		// Without a memory limit no policy ever applies.
		{"allkeys-lru without maxmemory", []string{"--maxmemory-policy", "allkeys-lru"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newRedis(t, tc.args...)
			if err := b.queue(Config{}).CheckEviction(t.Context()); !errors.Is(err, tc.want) {
				t.Errorf("CheckEviction = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("miniredis", func(t *testing.T) {
		t.Parallel()
		// miniredis has no CONFIG GET: the check fails, and the caller must know it talks to
		// the embedded store (cmd/runner skips the check there).
		b := newMiniredis(t)
		if err := b.queue(Config{}).CheckEviction(t.Context()); err == nil || errors.Is(err, ErrEviction) {
			t.Errorf("CheckEviction on miniredis = %v, want an error other than ErrEviction", err)
		}
	})
}

// ops are the queue's calls, each made once against a dead or stalled server.
func ops(q *Queue, cl Claim) []struct {
	name string
	call func(context.Context) error
} {
	exp := expansion(cl.Job, time.Now().Add(time.Hour))
	return []struct {
		name string
		call func(context.Context) error
	}{
		{"Expand", func(ctx context.Context) error { _, err := q.Expand(ctx, []Expansion{exp}); return err }},
		{"Watermarks", func(ctx context.Context) error { _, err := q.Watermarks(ctx, []string{cl.Job}); return err }},
		{"Claim", func(ctx context.Context) error {
			_, err := q.Claim(ctx, []int{cl.Shard}, 10, 0, time.Time{}, nil)
			return err
		}},
		{"Renew", func(ctx context.Context) error { _, err := q.Renew(ctx, []lease.Lease{cl.Lease()}); return err }},
		{"Complete", func(ctx context.Context) error { _, err := q.Complete(ctx, []Completion{{Claim: cl}}); return err }},
		{"History", func(ctx context.Context) error { _, err := q.History(ctx, cl.Job, 10); return err }},
		{"Time", func(ctx context.Context) error { _, err := q.Time(ctx); return err }},
		{"CheckEviction", func(ctx context.Context) error { return q.CheckEviction(ctx) }},
	}
}

// TestErrorReplies: a call that Redis refuses fails with a *ReplyError naming the reply's
// kind, and the client's error stays reachable with its message.
func TestErrorReplies(t *testing.T) {
	t.Parallel()
	b := newMiniredis(t)
	q := b.queue(Config{})
	const job = "refused"
	cl := Claim{Occurrence: occID(job, b.now(t)), Job: job, Shard: ShardOf(job), Attempt: 1, Token: 1}
	// OOM, not LOADING: go-redis retries LOADING replies itself, with its own backoff.
	const reply = "OOM command not allowed when used memory > 'maxmemory'."
	b.mr.SetError(reply)
	for _, op := range ops(q, cl) {
		err := op.call(t.Context())
		var re *ReplyError
		if !errors.As(err, &re) || re.Kind != "OOM" {
			t.Errorf("%s = %v (%T), want a *ReplyError of kind OOM", op.name, err, err)
			continue
		}
		var rerr redis.Error
		if !errors.As(err, &rerr) || !strings.Contains(err.Error(), reply) || !strings.HasPrefix(err.Error(), "queue: ") {
			t.Errorf("%s = %q: want the client's redis.Error wrapped, and its message with the call's context", op.name, err)
		}
	}
}

// TestRedisDown: with Redis killed or frozen, every call fails within about CallTimeout (a
// node must notice in time to stop its handlers before their leases expire), and once Redis
// is back, with its data and script cache gone after a crash, the queue works again.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	const callTimeout = 300 * time.Millisecond
	// Generous for a loaded machine, yet well under both the lease (3s) and go-redis'
	// default read timeout (3s), which a call without its own deadline would wait for.
	const slack = 1200 * time.Millisecond
	for _, tc := range []struct {
		name         string
		down, revive func(b *backend)
	}{
		{"killed", func(b *backend) { b.srv.Kill() }, func(b *backend) { b.srv.Restart() }},
		{"paused", func(b *backend) { b.srv.Pause() }, func(b *backend) { b.srv.Resume() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newRedis(t)
			q := b.queue(Config{Lease: 3 * time.Second, CallTimeout: callTimeout})
			const job = "down"
			due := b.now(t).Add(100 * time.Millisecond)
			mustExpand(t, q, expansion(job, due))
			cl, _, _ := b.claimDue(t, q, occID(job, due), due)

			tc.down(b)
			for _, op := range ops(q, cl) {
				start := time.Now()
				err := op.call(t.Context())
				if took := time.Since(start); took > callTimeout+slack {
					t.Errorf("%s with Redis %s took %v, want at most CallTimeout %v (+%v)", op.name, tc.name, took, callTimeout, slack)
				}
				if err == nil {
					t.Errorf("%s with Redis %s succeeded", op.name, tc.name)
				}
				if re := (*ReplyError)(nil); errors.As(err, &re) {
					t.Errorf("%s with Redis %s = %v, an error reply of kind %s; want a failure to reach Redis", op.name, tc.name, err, re.Kind)
				}
			}
			tc.revive(b)

			testwait.For(t, 10*time.Second, "Redis to come back", func() bool {
				_, err := q.Time(t.Context())
				return err == nil
			})
			job2 := "back-" + tc.name
			due2 := b.now(t).Add(100 * time.Millisecond)
			mustExpand(t, q, expansion(job2, due2))
			cl2, _, _ := b.claimDue(t, q, occID(job2, due2), due2)
			if ok, err := q.Renew(t.Context(), []lease.Lease{cl2.Lease()}); err != nil || ok[0] == lease.Lost {
				t.Errorf("Renew after Redis came back = %v, %v; want [true], nil", ok, err)
			}
			if ok := mustComplete(t, q, Completion{Claim: cl2}); !ok[0] {
				t.Errorf("Complete after Redis came back refused")
			}
		})
	}
}

// BenchmarkClaimComplete measures claiming and completing due occurrences in batches of 100
// (what a busy node does per wake-up); one op is one occurrence.
func BenchmarkClaimComplete(b *testing.B) {
	for _, bc := range []struct {
		name string
		new  func(testing.TB) *backend
	}{
		{"miniredis", func(tb testing.TB) *backend { return newMiniredis(tb) }},
		{"redis", func(tb testing.TB) *backend { return newRedis(tb) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const batch = 100
			be := bc.new(b)
			q := be.queue(Config{Lease: time.Minute})
			const job = "bench"
			shard := ShardOf(job)
			ctx := b.Context()
			// A watermark at the epoch lets occurrences due long ago in: they are due at once,
			// whatever the clock, where a new job's past would be dropped.
			if err := be.rdb.HSet(ctx, q.keys(shard).watermarks(), job, 0).Err(); err != nil {
				b.Fatal(err)
			}
			next := int64(0)
			b.ResetTimer()
			for done := 0; done < b.N; {
				b.StopTimer()
				exp := Expansion{Job: job}
				for range min(batch, b.N-done) {
					next++
					exp.Due = append(exp.Due, time.UnixMilli(next))
					exp.IDs = append(exp.IDs, job+"@"+strconv.FormatInt(next, 10))
				}
				if _, err := q.Expand(ctx, []Expansion{exp}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				c, err := be.claim(ctx, q, []int{shard}, batch)
				if err != nil {
					b.Fatal(err)
				}
				if len(c.Claims) == 0 {
					b.Fatal("nothing claimed")
				}
				cs := make([]Completion, len(c.Claims))
				for i, cl := range c.Claims {
					cs[i] = Completion{Claim: cl, Record: &Record{Occurrence: cl.Occurrence, Job: job, Attempt: cl.Attempt, FencingToken: cl.Token, Status: StatusSucceeded}}
				}
				if _, err := q.Complete(ctx, cs); err != nil {
					b.Fatal(err)
				}
				done += len(c.Claims)
			}
		})
	}
}
