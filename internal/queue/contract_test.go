package queue

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/lease"
)

// The contract tests run every case against miniredis and a real redis-server (see
// backend_test.go): the same scripts must keep the same promises on both.

func TestExpandIdempotent(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		step := b.lease / 3
		now := b.now(t)
		const job = "backup"
		shard := ShardOf(job)
		exp := expansion(job, now.Add(step), now.Add(2*step), now.Add(3*step))
		nodes := []*Queue{b.queue(Config{}), b.queue(Config{}), b.queue(Config{})}

		// Three nodes expand the same occurrences at once, then once more each.
		want := map[string]time.Time{job: exp.Due[2]}
		got := make([]map[string]time.Time, len(nodes))
		var wg sync.WaitGroup
		for i, q := range nodes {
			wg.Go(func() {
				wms, err := q.Expand(t.Context(), []Expansion{exp})
				if err != nil {
					t.Errorf("node %d: Expand: %v", i, err)
				}
				got[i] = wms.Watermarks
			})
		}
		wg.Wait()
		for _, q := range nodes {
			got = append(got, mustExpand(t, q, exp))
		}
		for i, wms := range got {
			if diff := cmp.Diff(want, wms); diff != "" {
				t.Errorf("Expand #%d watermarks (-want +got):\n%s", i, diff)
			}
		}
		if n := b.zcard(t, nodes[0], shard); n != 3 {
			t.Fatalf("agenda has %d entries after 6 identical expansions, want 3", n)
		}

		// An overlapping window adds only what is new, and moves the watermark.
		later := expansion(job, exp.Due[1], exp.Due[2], now.Add(4*step))
		want = map[string]time.Time{job: later.Due[2]}
		if diff := cmp.Diff(want, mustExpand(t, nodes[1], later)); diff != "" {
			t.Errorf("overlapping Expand watermarks (-want +got):\n%s", diff)
		}
		if n := b.zcard(t, nodes[0], shard); n != 4 {
			t.Fatalf("agenda has %d entries after an overlapping expansion, want 4", n)
		}
		wms, err := nodes[2].Watermarks(t.Context(), []string{job, "never-expanded"})
		if err != nil {
			t.Fatalf("Watermarks: %v", err)
		}
		if diff := cmp.Diff(want, wms); diff != "" {
			t.Errorf("Watermarks (-want +got):\n%s", diff)
		}

		// A finished occurrence is never added again (invariant 5), by any node.
		first := exp.IDs[0]
		cl, _, _ := b.claimDue(t, nodes[0], first, exp.Due[0])
		if ok := mustComplete(t, nodes[0], Completion{Claim: cl}); !ok[0] {
			t.Fatalf("Complete of a held claim refused")
		}
		for _, q := range nodes {
			mustExpand(t, q, exp, later)
		}
		if n := b.zcard(t, nodes[0], shard); n != 3 {
			t.Errorf("agenda has %d entries after re-expanding a done occurrence, want 3", n)
		}
		b.clockTo(t, later.Due[2])
		var claimed []string
		for _, c := range b.mustClaim(t, nodes[2], shard, 100).Claims {
			claimed = append(claimed, c.Occurrence)
		}
		wantClaimed := []string{exp.IDs[1], exp.IDs[2], later.IDs[2]}
		if diff := cmp.Diff(wantClaimed, claimed); diff != "" {
			t.Errorf("claims after all are due (-want +got):\n%s", diff)
		}
	})
}

func TestExpandNewJobStartsNow(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		step := b.lease / 3
		now := b.now(t)
		fresh := expansion("fresh", now.Add(-2*step), now.Add(-step), now.Add(step))
		past := expansion("past", now.Add(-2*step), now.Add(-step))

		want := map[string]time.Time{"fresh": fresh.Due[2]}
		if diff := cmp.Diff(want, mustExpand(t, q, fresh, past)); diff != "" {
			t.Errorf("Expand watermarks (-want +got):\n%s", diff)
		}
		wms, err := q.Watermarks(t.Context(), []string{"fresh", "past"})
		if err != nil {
			t.Fatalf("Watermarks: %v", err)
		}
		if diff := cmp.Diff(want, wms); diff != "" {
			t.Errorf("Watermarks (-want +got):\n%s", diff)
		}
		var in []string
		for _, e := range []Expansion{fresh, past} {
			for _, id := range e.IDs {
				err := b.rdb.ZScore(t.Context(), q.keys(ShardOf(e.Job)).agenda(), id).Err()
				switch {
				case err == nil:
					in = append(in, id)
				case err != redis.Nil:
					t.Fatalf("ZSCORE: %v", err)
				}
			}
		}
		if diff := cmp.Diff([]string{fresh.IDs[2]}, in); diff != "" {
			t.Errorf("occurrences in the agenda (-want +got):\n%s", diff)
		}
	})
}

// TestNotBeforeApartFromDue: an occurrence whose start is later than its due time (a job's
// jitter) is claimed from its start, not its due time, and expansion still counts due times:
// an occurrence due later but starting earlier is added, and none is added twice.
func TestNotBeforeApartFromDue(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		step := b.lease / 3
		const job = "jittered"
		shard := ShardOf(job)
		now := b.now(t)
		// a is due first but starts last; c is due second and starts at its due time.
		a, c := now.Add(step).Truncate(time.Millisecond), now.Add(2*step).Truncate(time.Millisecond)
		x := expansion(job, a, c)
		x.NotBefore = []time.Time{c.Add(step), c}
		if diff := cmp.Diff(map[string]time.Time{job: c}, mustExpand(t, q, x)); diff != "" {
			t.Errorf("watermark (-want +got):\n%s", diff)
		}
		mustExpand(t, q, x) // again: nothing new
		if got := b.score(t, q, x.IDs[0]); !got.Equal(c.Add(step)) {
			t.Errorf("score of the occurrence due at %v = %v, want its start %v", a, got, c.Add(step))
		}
		b.claimNothing(t, q, shard, a.Add(step/2))
		cl, _, _ := b.claimDue(t, q, x.IDs[1], c)
		if !cl.NotBefore.Equal(c) {
			t.Errorf("NotBefore = %v, want %v", cl.NotBefore, c)
		}
		cl, _, _ = b.claimDue(t, q, x.IDs[0], c.Add(step))
		if !cl.NotBefore.Equal(c.Add(step)) {
			t.Errorf("NotBefore = %v, want the start %v, not the due time %v", cl.NotBefore, c.Add(step), a)
		}
	})
}

// TestMaxRunsCapsWhatIsAdded: a job with max_runs has at most that many occurrences ever
// added, however often and by however many nodes it is expanded; its watermark still moves
// on, so the occurrences past the cap never come back.
func TestMaxRunsCapsWhatIsAdded(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		step := b.lease / 3
		const job = "limited"
		now := b.now(t)
		var dues []time.Time
		for i := range 5 {
			dues = append(dues, now.Add(step+time.Duration(i)*time.Millisecond))
		}
		x := expansion(job, dues[:3]...)
		x.MaxRuns = 2
		mustExpand(t, q, x, x) // two nodes at once
		y := expansion(job, dues...)
		y.MaxRuns = 2
		if diff := cmp.Diff(map[string]time.Time{job: dues[4].Truncate(time.Millisecond)}, mustExpand(t, q, y)); diff != "" {
			t.Errorf("watermark (-want +got):\n%s", diff)
		}
		n, err := b.rdb.ZCard(t.Context(), q.keys(ShardOf(job)).agenda()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("%d occurrences in the agenda, want max_runs = 2", n)
		}
	})
}

func TestNeverEarly(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		step := b.lease / 3
		const job = "early"
		shard := ShardOf(job)
		due := b.now(t).Add(step)
		mustExpand(t, q, expansion(job, due))

		c := b.claimNothing(t, q, shard, due)
		if diff := cmp.Diff(map[int]time.Time{shard: due}, c.Heads); diff != "" {
			t.Errorf("Heads of a future occurrence (-want +got):\n%s", diff)
		}
		b.clockTo(t, due.Add(-step/2))
		b.claimNothing(t, q, shard, due)
		if b.mr != nil { // only a fake clock can stop a millisecond short
			b.clockTo(t, due.Add(-time.Millisecond))
			b.claimNothing(t, q, shard, due)
		}
		cl, _, _ := b.claimDue(t, q, occID(job, due), due)
		// A first token is Redis' time in ms times a thousand (see TestFencingTokens).
		if cl.Attempt != 1 || cl.Token < due.UnixMilli()*1000 || cl.Job != job || cl.Shard != shard {
			t.Errorf("claim = %+v, want attempt 1, a token from Redis' time, job %s, shard %d", cl, job, shard)
		}
	})
}

func TestClaimAheadTellsWhenToStart(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "ahead"
		shard := ShardOf(job)
		// The test never waits for the due time, so it lies far enough ahead that no loaded
		// machine gets there between the calls below.
		wait := time.Minute
		due := b.now(t).Add(wait).Truncate(time.Millisecond)
		mustExpand(t, q, expansion(job, due))
		claim := func(lead time.Duration) Claimed {
			now := b.now(t)
			c, err := q.Claim(t.Context(), []int{shard}, 10, lead, now.Add(q.CallTimeout()), nil)
			if err != nil {
				t.Fatalf("Claim: %v", err)
			}
			return c
		}
		short := wait / 2
		if c := claim(short); len(c.Claims) != 0 || !c.Now.Before(due.Add(-short)) {
			t.Fatalf("claimed %+v with a lead shorter than the wait (Redis' clock %v)", c.Claims, c.Now)
		}
		c := claim(2 * wait)
		if len(c.Claims) != 1 {
			t.Fatalf("claims with a lead past the due time: %+v, want 1", c.Claims)
		}
		if got := c.Claims[0]; got.Occurrence != occID(job, due) || !got.NotBefore.Equal(due) {
			t.Errorf("claim %+v: want %s not before %s", got, occID(job, due), due)
		}
		if !c.Now.Before(due) {
			t.Errorf("Redis' clock %s at the claim is not before the due time %s: the test claimed nothing ahead", c.Now, due)
		}
	})
}

func TestOneHolderFencing(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		const (
			nodes   = 4
			workers = 8
			perJob  = 40
			batch   = 3
		)
		jobs := sameShard("hammer", 3)
		shard := ShardOf(jobs[0])
		// A lease no test run outlives, so every claim is still held when the next is made.
		lease := 5 * time.Minute
		qs := make([]*Queue, nodes)
		for i := range qs {
			qs[i] = b.queue(Config{Lease: lease})
		}
		start := b.now(t).Add(100 * time.Millisecond)
		var exps []Expansion
		var last time.Time
		for _, j := range jobs {
			var dues []time.Time
			for i := range perJob {
				dues = append(dues, start.Add(time.Duration(i)*time.Millisecond))
			}
			exps = append(exps, expansion(j, dues...))
			last = dues[len(dues)-1]
		}
		mustExpand(t, qs[0], exps...)
		b.clockTo(t, last)

		// seqs[w] is what worker w claimed, in the order it claimed it.
		seqs := make([][]Claim, nodes*workers)
		var wg sync.WaitGroup
		for w := range seqs {
			q := qs[w%nodes]
			wg.Go(func() {
				for {
					c, err := b.claim(t.Context(), q, []int{shard}, batch)
					if err != nil {
						t.Errorf("worker %d: Claim: %v", w, err)
						return
					}
					seqs[w] = append(seqs[w], c.Claims...)
					head, ok := c.Heads[shard]
					if len(c.Claims) == 0 && (!ok || head.After(c.Now)) {
						return // nothing due is left
					}
				}
			})
		}
		wg.Wait()

		count := map[string]int{}
		tokens := map[string][]int64{}
		for w, seq := range seqs {
			lastTok := map[string]int64{}
			for _, c := range seq {
				count[c.Occurrence]++
				tokens[c.Job] = append(tokens[c.Job], c.Token)
				if c.Attempt != 1 {
					t.Errorf("%s claimed with attempt %d, want 1", c.Occurrence, c.Attempt)
				}
				if c.Token <= lastTok[c.Job] {
					t.Errorf("worker %d: job %s token %d after %d: not increasing in claim order", w, c.Job, c.Token, lastTok[c.Job])
				}
				lastTok[c.Job] = c.Token
			}
		}
		for _, e := range exps {
			for _, id := range e.IDs {
				if count[id] != 1 {
					t.Errorf("%s claimed %d times, want exactly once", id, count[id])
				}
			}
		}
		if len(count) != len(jobs)*perJob {
			t.Errorf("claimed %d distinct occurrences, want %d", len(count), len(jobs)*perJob)
		}
		// Each job's tokens are unique, whichever worker got them.
		for _, j := range jobs {
			got := slices.Compact(slices.Sorted(slices.Values(tokens[j])))
			if len(got) != perJob {
				t.Errorf("job %s: %d distinct fencing tokens for %d claims", j, len(got), perJob)
			}
		}
	})
}

func TestLeaseExpiry(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q1, q2 := b.queue(Config{}), b.queue(Config{})
		const job = "expiring"
		shard := ShardOf(job)
		due := b.now(t).Add(b.lease / 3)
		mustExpand(t, q1, expansion(job, due))
		occ := occID(job, due)

		first, sent, at := b.claimDue(t, q1, occ, due)
		// A claim moves the score to the lease's expiry: if the holder dies, the occurrence
		// becomes due again by itself. The script took the lease between sent and at.
		if s := b.score(t, q1, occ); s.Before(sent.Add(b.lease)) || s.After(at.Add(b.lease)) {
			t.Errorf("agenda score after the claim = %v, want the lease's expiry, %v to %v", s, sent.Add(b.lease), at.Add(b.lease))
		}
		b.claimNothing(t, q2, shard, sent.Add(b.lease))
		second, _, _ := b.claimDue(t, q2, occ, at.Add(b.lease))
		if second.Attempt != first.Attempt+1 || second.Token <= first.Token {
			t.Fatalf("claim after expiry = %+v, want attempt %d and a token above %d", second, first.Attempt+1, first.Token)
		}

		if ok, err := q1.Renew(t.Context(), []lease.Lease{first.Lease()}); err != nil || ok[0] != lease.Lost {
			t.Errorf("Renew with the lost lease = %v, %v; want [false], nil", ok, err)
		}
		rec := func(c Claim, node string) *Record {
			return &Record{Occurrence: c.Occurrence, Job: c.Job, Node: node, Attempt: c.Attempt, FencingToken: c.Token, Status: StatusSucceeded}
		}
		if ok := mustComplete(t, q1, Completion{Claim: first, Record: rec(first, "n1")}); ok[0] {
			t.Errorf("Complete with the lost lease accepted")
		}
		if ok, err := q2.Renew(t.Context(), []lease.Lease{second.Lease()}); err != nil || ok[0] == lease.Lost {
			t.Errorf("Renew by the new holder = %v, %v; want [true], nil", ok, err)
		}
		if ok := mustComplete(t, q2, Completion{Claim: second, Record: rec(second, "n2")}); !ok[0] {
			t.Errorf("Complete by the new holder refused")
		}
		h, err := q1.History(t.Context(), job, 10)
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		if diff := cmp.Diff([]Record{*rec(second, "n2")}, h); diff != "" {
			t.Errorf("History: only the holder's run is recorded (-want +got):\n%s", diff)
		}
		if n := b.zcard(t, q1, shard); n != 0 {
			t.Errorf("agenda has %d entries after done, want 0", n)
		}
	})
}

func TestRenewExtends(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q1, q2 := b.queue(Config{}), b.queue(Config{})
		const job = "renewed"
		shard := ShardOf(job)
		due := b.now(t).Add(b.lease / 3)
		mustExpand(t, q1, expansion(job, due))
		occ := occID(job, due)

		first, _, at := b.claimDue(t, q1, occ, due)
		renew := func() (before, after time.Time) {
			t.Helper()
			before = b.now(t)
			if ok, err := q1.Renew(t.Context(), []lease.Lease{first.Lease()}); err != nil || ok[0] == lease.Lost {
				t.Fatalf("Renew of a held lease = %v, %v; want [true], nil", ok, err)
			}
			return before, b.now(t)
		}
		b.clockTo(t, at.Add(b.lease/2))
		before, after := renew()
		// The agenda score moves with the lease, so claimers do not even look at it.
		if s := b.score(t, q1, occ); s.Before(before.Add(b.lease)) || s.After(after.Add(b.lease)) {
			t.Errorf("agenda score after Renew = %v, want the new expiry, %v to %v", s, before.Add(b.lease), after.Add(b.lease))
		}

		// Past the original expiry, before the renewed one: nobody else claims it, and its
		// holder still holds the lock.
		b.clockTo(t, at.Add(b.lease+b.lease/10))
		b.claimNothing(t, q2, shard, before.Add(b.lease))
		_, after = renew()
		second, _, _ := b.claimDue(t, q2, occ, after.Add(b.lease))
		if second.Attempt != 2 || second.Token <= first.Token {
			t.Errorf("claim after the renewed lease expired = %+v, want attempt 2, token above %d", second, first.Token)
		}
	})
}

// TestClaimSkipsLiveLock: an occurrence whose score says due while its lock still lives (a
// lock that outlives its score by a millisecond on a real server, or a score moved by hand)
// is not claimed; its score moves to the lock's expiry.
func TestClaimSkipsLiveLock(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q1, q2 := b.queue(Config{}), b.queue(Config{})
		const job = "live-lock"
		shard := ShardOf(job)
		due := b.now(t).Add(b.lease / 3)
		mustExpand(t, q1, expansion(job, due))
		occ := occID(job, due)
		first, sent, at := b.claimDue(t, q1, occ, due)

		if err := b.rdb.ZAdd(t.Context(), q1.keys(shard).agenda(), redis.Z{Score: float64(due.UnixMilli()), Member: occ}).Err(); err != nil {
			t.Fatalf("ZADD: %v", err)
		}
		// The lock expires between sent+lease and at+lease (see claimDue).
		b.claimNothing(t, q2, shard, sent.Add(b.lease))
		// PTTL rounds to the millisecond, hence the millisecond of slack below; above, the
		// second claim ran later still.
		if s := b.score(t, q1, occ); s.Before(sent.Add(b.lease-time.Millisecond)) || s.After(at.Add(b.lease+time.Second)) {
			t.Errorf("score of a held occurrence after a claim looked at it = %v, want its lock's expiry, %v to %v", s, sent.Add(b.lease), at.Add(b.lease))
		}
		if ok, err := q1.Renew(t.Context(), []lease.Lease{first.Lease()}); err != nil || ok[0] == lease.Lost {
			t.Errorf("Renew by the holder = %v, %v; want [true], nil", ok, err)
		}
	})
}

func TestComplete(t *testing.T) {
	tests := []struct {
		name string
		// completion turns a claim into the completion under test.
		completion func(c Claim, delay time.Duration) Completion
		status     Status
		// again says whether the occurrence comes back, and with which attempt.
		again       bool
		nextAttempt int
	}{
		{
			name:       "done",
			completion: func(c Claim, _ time.Duration) Completion { return Completion{Claim: c} },
			status:     StatusSucceeded,
		},
		{
			name:        "retry",
			completion:  func(c Claim, d time.Duration) Completion { return Completion{Claim: c, Retry: true, Delay: d} },
			status:      StatusRetrying,
			again:       true,
			nextAttempt: 2,
		},
		{
			name:        "release",
			completion:  func(c Claim, d time.Duration) Completion { return Completion{Claim: c, Release: true, Delay: d} },
			status:      StatusSkipped,
			again:       true,
			nextAttempt: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			contract(t, func(t *testing.T, b *backend) {
				q := b.queue(Config{})
				job := "complete-" + tc.name
				shard := ShardOf(job)
				delay := b.lease / 3
				due := b.now(t).Add(b.lease / 3)
				mustExpand(t, q, expansion(job, due))
				occ := occID(job, due)

				cl, _, _ := b.claimDue(t, q, occ, due)
				comp := tc.completion(cl, delay)
				rec := &Record{Occurrence: occ, Job: job, Attempt: cl.Attempt, FencingToken: cl.Token, Status: tc.status}
				comp.Record = rec
				before := b.now(t)
				if ok := mustComplete(t, q, comp); !ok[0] {
					t.Fatalf("Complete of a held claim refused")
				}
				after := b.now(t)
				// The same call again, arriving late, as go-redis re-sends a command whose
				// reply was lost: accepted, and applied only once.
				b.clockTo(t, after.Add(delay/4))
				if ok := mustComplete(t, q, comp); !ok[0] {
					t.Errorf("re-sent Complete refused")
				}
				h, err := q.History(t.Context(), job, 10)
				if err != nil {
					t.Fatalf("History: %v", err)
				}
				if diff := cmp.Diff([]Record{*rec}, h); diff != "" {
					t.Errorf("History after a re-sent Complete (-want +got):\n%s", diff)
				}

				if !tc.again {
					if n := b.zcard(t, q, shard); n != 0 {
						t.Errorf("agenda has %d entries after done, want 0", n)
					}
					if err := b.rdb.HGet(t.Context(), q.keys(shard).attempts(), occ).Err(); err != redis.Nil {
						t.Errorf("attempts of a done occurrence: HGET err = %v, want redis.Nil", err)
					}
					b.clockTo(t, after.Add(b.lease+delay))
					b.claimNothing(t, q, shard, after.Add(time.Hour))
					return
				}
				c := b.claimNothing(t, q, shard, before.Add(delay))
				if head := c.Heads[shard]; head.Before(before.Add(delay)) || head.After(after.Add(delay)) {
					t.Errorf("rescheduled at %v, want between %v and %v", head, before.Add(delay), after.Add(delay))
				}
				next, _, _ := b.claimDue(t, q, occ, after.Add(delay))
				if next.Attempt != tc.nextAttempt || next.Token <= cl.Token {
					t.Errorf("next claim = %+v, want attempt %d and a token above %d", next, tc.nextAttempt, cl.Token)
				}
			})
		})
	}
}

// TestDoneForgetsTheOccurrence checks that an occurrence done leaves nothing behind in its
// shard's per-occurrence hashes, including those the completion looks into only when they
// hold anything (a cancellation, a late mark, an unplaced wait), nor in its job's unplaced
// zset, where an occurrence whose lease ran out may have been moved meanwhile.
func TestDoneForgetsTheOccurrence(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		ctx := t.Context()
		job := "forgotten"
		shard := ShardOf(job)
		k := q.keys(shard)
		due := b.now(t).Add(b.lease / 3)
		mustExpand(t, q, expansion(job, due))
		occ := occID(job, due)
		cl, _, _ := b.claimDue(t, q, occ, due)
		for _, h := range []string{k.cancel(), k.late(), k.next()} {
			if err := b.rdb.HSet(ctx, h, occ, "1").Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.rdb.ZAdd(ctx, k.unplacedPrefix()+job, redis.Z{Score: 1, Member: occ}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := b.rdb.HSet(ctx, k.unplaced(), job, 1).Err(); err != nil {
			t.Fatal(err)
		}
		if ok := mustComplete(t, q, Completion{Claim: cl, Record: &Record{Occurrence: occ, Job: job, Status: StatusSucceeded}}); !ok[0] {
			t.Fatal("Complete of a held claim refused")
		}
		for _, h := range []string{k.cancel(), k.late(), k.next(), k.attempts(), k.tokens()} {
			if err := b.rdb.HGet(ctx, h, occ).Err(); err != redis.Nil {
				t.Errorf("%s still has a field for the done occurrence (HGET err = %v)", h, err)
			}
		}
		if err := b.rdb.ZScore(ctx, k.unplacedPrefix()+job, occ).Err(); err != redis.Nil {
			t.Errorf("the job's unplaced zset still holds the done occurrence (ZSCORE err = %v)", err)
		}
	})
}

func TestHistory(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{HistoryLimit: 3})
		const job = "history"
		shard := ShardOf(job)
		start := b.now(t).Add(b.lease / 3)
		var dues []time.Time
		for i := range 5 {
			dues = append(dues, start.Add(time.Duration(i)*time.Millisecond))
		}
		mustExpand(t, q, expansion(job, dues...))
		b.clockTo(t, dues[4])
		deadline := time.Now().Add(5 * time.Second)
		var claims []Claim
		for len(claims) < 5 && time.Now().Before(deadline) {
			claims = append(claims, b.mustClaim(t, q, shard, 10).Claims...)
		}
		if len(claims) != 5 {
			t.Fatalf("claimed %d occurrences, want 5", len(claims))
		}

		base := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
		var recs []Record
		for i, c := range claims {
			r := Record{
				Occurrence:   c.Occurrence,
				Job:          job,
				Node:         fmt.Sprintf("node-%d", i%2),
				Attempt:      c.Attempt,
				FencingToken: c.Token,
				ScheduledAt:  dues[i],
				StartedAt:    base.Add(time.Duration(i) * time.Second),
				EndedAt:      base.Add(time.Duration(i)*time.Second + 1500*time.Millisecond),
				Status:       []Status{StatusSucceeded, StatusFailed}[i%2],
				Error:        []string{"", "exit status 3"}[i%2],
				Message:      "run " + fmt.Sprint(i),
				Output:       "line 1\nline 2\t\"quoted\"",
				Metadata:     map[string]string{"i": fmt.Sprint(i), "zone": "Europe/Berlin"},
			}
			recs = append(recs, r)
			if ok := mustComplete(t, q, Completion{Claim: c, Record: &r}); !ok[0] {
				t.Fatalf("Complete %d refused", i)
			}
		}
		newest := []Record{recs[4], recs[3], recs[2]}
		for _, tc := range []struct {
			n    int
			want []Record
		}{
			{10, newest},
			{3, newest},
			{2, newest[:2]},
		} {
			got, err := q.History(t.Context(), job, tc.n)
			if err != nil {
				t.Fatalf("History(%d): %v", tc.n, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("History(%d) (-want +got):\n%s", tc.n, diff)
			}
		}
		got, err := q.History(t.Context(), "no-such-job", 10)
		if err != nil || len(got) != 0 {
			t.Errorf("History of an unknown job = %v, %v; want none, nil", got, err)
		}
	})
}

// TestNoScript: Redis forgets its script cache on restart and failover; every call must then
// fall back to EVAL by itself.
func TestNoScript(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "noscript"
		shard := ShardOf(job)
		all := make([]int, Shards)
		for i := range all {
			all[i] = i
		}
		flush := func() {
			t.Helper()
			if err := b.rdb.ScriptFlush(t.Context()).Err(); err != nil {
				t.Fatalf("SCRIPT FLUSH: %v", err)
			}
		}
		cached := func(s *redis.Script) bool {
			t.Helper()
			ok, err := b.rdb.ScriptExists(t.Context(), s.Hash()).Result()
			if err != nil {
				t.Fatalf("SCRIPT EXISTS: %v", err)
			}
			return ok[0]
		}

		due := b.now(t).Add(b.lease / 3)
		flush()
		mustExpand(t, q, expansion(job, due))
		if !cached(q.expand) {
			t.Errorf("expand script not cached after the EVAL fallback")
		}
		b.clockTo(t, due)
		flush()
		c, err := b.claim(t.Context(), q, all, 10)
		if err != nil {
			t.Fatalf("Claim over all shards after SCRIPT FLUSH: %v", err)
		}
		if len(c.Claims) != 1 {
			// A real server's lock may outlive the score by a millisecond: try once more.
			c = b.mustClaim(t, q, shard, 10)
		}
		if len(c.Claims) != 1 || c.Claims[0].Occurrence != occID(job, due) {
			t.Fatalf("claims after SCRIPT FLUSH = %+v, want %s", c.Claims, occID(job, due))
		}
		cl := c.Claims[0]
		if !cached(q.claim) {
			t.Errorf("claim script not cached after the EVAL fallback")
		}
		flush()
		if ok, err := q.Renew(t.Context(), []lease.Lease{cl.Lease()}); err != nil || ok[0] == lease.Lost {
			t.Errorf("Renew after SCRIPT FLUSH = %v, %v; want [true], nil", ok, err)
		}
		flush()
		if ok, err := q.Complete(t.Context(), []Completion{{Claim: cl}}); err != nil || !ok.Accepted[0] {
			t.Errorf("Complete after SCRIPT FLUSH = %v, %v; want [true], nil", ok, err)
		}
		if !cached(q.complete) {
			t.Errorf("complete script not cached after the EVAL fallback")
		}
	})
}

// TestClaimAfterDeadline: a claim that reaches Redis after its caller stopped waiting (it sat
// in a socket while Redis was frozen) claims nothing, so nothing is orphaned for a lease.
func TestClaimAfterDeadline(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "late-claim"
		shard := ShardOf(job)
		due := b.now(t).Add(b.lease / 3)
		mustExpand(t, q, expansion(job, due))
		b.clockTo(t, due)

		c, err := q.Claim(t.Context(), []int{shard}, 10, 0, b.now(t).Add(-time.Millisecond), nil)
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		if len(c.Claims) != 0 {
			t.Errorf("a claim past its deadline claimed %+v, want nothing", c.Claims)
		}
		if diff := cmp.Diff(map[int]time.Time{shard: due}, c.Heads); diff != "" {
			t.Errorf("Heads after a late claim (-want +got):\n%s", diff)
		}
		cl, _, _ := b.claimDue(t, q, occID(job, due), due)
		if cl.Attempt != 1 {
			t.Errorf("claim after a late one = %+v, want attempt 1: the late call took nothing", cl)
		}
	})
}

// TestLateCompletion: a holder whose lease ran out may still renew and record its run while
// nobody claimed the occurrence since (its run was the only one).
func TestLateCompletion(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "late-complete"
		shard := ShardOf(job)
		due := b.now(t).Add(b.lease / 3)
		mustExpand(t, q, expansion(job, due))
		cl, _, at := b.claimDue(t, q, occID(job, due), due)
		b.clockTo(t, at.Add(b.lease+b.lease/10))

		// Nobody claimed it since: the holder takes its lease back, and may complete.
		if ok, err := q.Renew(t.Context(), []lease.Lease{cl.Lease()}); err != nil || ok[0] != lease.Held {
			t.Errorf("Renew of an expired lease nobody claimed since = %v, %v; want it held again", ok, err)
		}
		rec := &Record{Occurrence: cl.Occurrence, Job: job, Attempt: 1, FencingToken: cl.Token, Status: StatusSucceeded}
		for i := range 2 {
			if ok := mustComplete(t, q, Completion{Claim: cl, Record: rec}); !ok[0] {
				t.Errorf("late Complete #%d refused although nobody claimed since", i+1)
			}
		}
		h, err := q.History(t.Context(), job, 10)
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		if diff := cmp.Diff([]Record{*rec}, h); diff != "" {
			t.Errorf("History (-want +got):\n%s", diff)
		}
		if n := b.zcard(t, q, shard); n != 0 {
			t.Errorf("agenda has %d entries after a late done, want 0", n)
		}
	})
}
