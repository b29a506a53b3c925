package queue

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/lease"
)

// TestStaleCompletionAfterTakeoverAndRelease: a completion counts only while no later claim
// exists. A holder whose lease expired, after another node claimed the occurrence and gave
// its attempt back, is refused, then and after the other's marker expired.
func TestStaleCompletionAfterTakeoverAndRelease(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		a, other := b.queue(Config{}), b.queue(Config{})
		const job = "stale"
		due := b.now(t).Add(b.lease / 3)
		mustExpand(t, a, expansion(job, due))
		occ := occID(job, due)
		stale, _, at := b.claimDue(t, a, occ, due)
		taken, _, _ := b.claimDue(t, other, occ, at.Add(b.lease+b.lease/10))
		if taken.Attempt != 2 || taken.Token <= stale.Token {
			t.Fatalf("takeover = %+v, want attempt 2 and a token above %d", taken, stale.Token)
		}
		if ok := mustComplete(t, other, Completion{Claim: taken, Release: true, Delay: b.lease}); !ok[0] {
			t.Fatal("the holder's release was refused")
		}
		rec := &Record{Occurrence: occ, Job: job, Attempt: stale.Attempt, FencingToken: stale.Token, Status: StatusSucceeded}
		if ok := mustComplete(t, a, Completion{Claim: stale, Record: rec}); ok[0] {
			t.Error("a stale holder's completion was accepted after a takeover and a release")
		}
		b.clockTo(t, b.now(t).Add(a.markerTTL()+time.Millisecond))
		if ok := mustComplete(t, a, Completion{Claim: stale, Record: rec}); ok[0] {
			t.Error("a stale holder's completion was accepted once the release's marker expired")
		}
		if h := b.history(t, a, job); len(h) != 0 {
			t.Errorf("history %+v, want none: no completion counted", h)
		}
		next, _, _ := b.claimDue(t, a, occ, b.now(t))
		if next.Attempt != 2 || next.Token <= taken.Token {
			t.Errorf("claim after the release = %+v, want attempt 2 and a token above %d", next, taken.Token)
		}
	})
}

// flushed empties the backend's Redis, as a restart without persistence does.
func (b *backend) flushed(t *testing.T) {
	t.Helper()
	if err := b.rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
}

// TestFencingTokensNeverGoBack: a token is at least Redis' time in ms times a thousand, so
// a job's tokens grow even when Redis forgot the last one.
func TestFencingTokensNeverGoBack(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		const job = "tokens"
		var last int64
		for round := range 3 {
			q := b.queue(Config{}) // a node that knew nothing of the earlier rounds
			due := b.now(t).Add(b.lease / 10)
			mustExpand(t, q, expansion(job, due))
			cl, _, _ := b.claimDue(t, q, occID(job, due), due)
			if cl.Token <= last {
				t.Errorf("round %d: token %d after %d: went back", round, cl.Token, last)
			}
			last = cl.Token
			b.flushed(t)
		}
	})
}

// TestGuardAfterRedisForgotEverything: Redis comes back empty while a run is in flight, one
// occurrence has finished and one is planned. The nodes that knew the shard learn of the
// loss at their next call; claims are held for a lease; the running holder takes its lease
// back and completes; the finished occurrence is written back, not run again; the planned
// one is added back from the floor and runs once, after the hold.
func TestGuardAfterRedisForgotEverything(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		a, other := b.queue(Config{}), b.queue(Config{})
		const job = "forgot"
		shard := ShardOf(job)
		step := b.lease / 4
		d1 := b.now(t).Add(step)
		d2, d3 := d1.Add(step), d1.Add(2*b.lease)
		x := expansion(job, d1, d2, d3)
		mustExpand(t, a, x)
		running, _, _ := b.claimDue(t, a, occID(job, d1), d1)
		done, _, _ := b.claimDue(t, a, occID(job, d2), d2)
		rec := &Record{Occurrence: done.Occurrence, Job: job, Attempt: 1, FencingToken: done.Token, Status: StatusSucceeded}
		if ok := mustComplete(t, a, Completion{Claim: done, Record: rec}); !ok[0] {
			t.Fatal("completion refused")
		}
		b.claimNothing(t, other, shard, d3) // the other node knows the shard too

		b.flushed(t)
		b.claimNothing(t, other, shard, d3)
		select {
		case <-other.Lost():
		default:
			t.Fatal("the node that found the loss was not told")
		}
		lost := b.now(t)
		if v, err := a.Renew(t.Context(), []lease.Lease{running.Lease()}); err != nil || v[0] != lease.Held {
			t.Fatalf("renewal of the run in flight = %v, %v; want it held again", v, err)
		}
		for _, q := range []*Queue{a, other} {
			losses, err := q.Recover(t.Context())
			if err != nil || len(losses) != 1 || losses[0].Shard != shard || !losses[0].Restored.IsZero() {
				t.Fatalf("Recover = %+v, %v; want one loss of shard %d, state empty", losses, err, shard)
			}
			if f := losses[0].Floor; f.Before(d2) || f.After(lost) {
				t.Errorf("floor %v, want between the last call before the loss (after %v) and the loss %v", f, d2, lost)
			}
			fx := x
			fx.Floor = losses[0].Floor
			mustExpand(t, q, fx)
		}
		if h := b.history(t, a, job); len(h) != 1 || h[0].Occurrence != done.Occurrence {
			t.Errorf("history after recovery %+v, want the finished run's record written back", h)
		}
		// Nothing is claimed before the hold ends, then only d3, once.
		c := b.claimNothing(t, other, shard, lost.Add(b.lease*9/10))
		if head := c.Heads[shard]; head.Before(lost.Add(b.lease)) {
			t.Errorf("head %v during the hold, want the hold's end (%v) or later", head, lost.Add(b.lease))
		}
		if v, err := a.Renew(t.Context(), []lease.Lease{running.Lease()}); err != nil || v[0] != lease.Held {
			t.Fatalf("renewal in the hold = %v, %v; want held", v, err)
		}
		var claims []string
		// The holder renews as its lease keeper would, while the clock goes to d3.
		for at := lost.Add(b.lease / 2); at.Before(d3); at = at.Add(b.lease / 2) {
			b.clockTo(t, at)
			if v, err := a.Renew(t.Context(), []lease.Lease{running.Lease()}); err != nil || v[0] != lease.Held {
				t.Fatalf("renewal = %v, %v; want held", v, err)
			}
		}
		b.clockTo(t, d3)
		deadline := time.Now().Add(10 * time.Second)
		for len(claims) == 0 && time.Now().Before(deadline) {
			for _, q := range []*Queue{other, a} {
				for _, cl := range b.mustClaim(t, q, shard, 10).Claims {
					claims = append(claims, cl.Occurrence)
				}
			}
		}
		if want := []string{occID(job, d3)}; !slices.Equal(claims, want) {
			t.Errorf("claimed %v after the hold, want %v", claims, want)
		}
		if v, err := a.Renew(t.Context(), []lease.Lease{running.Lease()}); err != nil || v[0] != lease.Held {
			t.Errorf("renewal after the hold = %v, %v; want still held", v, err)
		}
		if ok := mustComplete(t, a, Completion{Claim: running}); !ok[0] {
			t.Error("the run in flight could not complete")
		}
	})
}

// TestGuardAfterRedisWentBack: Redis comes back with an older state (a restored snapshot):
// a finished occurrence is on the agenda again. The guard finds the epoch behind, and the
// node that finished it writes it back as done, so it does not run again. With the guard
// off, it runs twice.
func TestGuardAfterRedisWentBack(t *testing.T) {
	for _, off := range []bool{false, true} {
		name := "guard on"
		if off {
			name = "guard off"
		}
		t.Run(name, func(t *testing.T) {
			contract(t, func(t *testing.T, b *backend) {
				q := b.queue(Config{DisableGuard: off})
				const job = "went-back"
				shard := ShardOf(job)
				k := q.keys(shard)
				due := b.now(t).Add(b.lease / 10)
				mustExpand(t, q, expansion(job, due))
				occ := occID(job, due)
				// A snapshot of the shard's keys that matter here (miniredis has no DUMP).
				snapshot := func() func() {
					agenda, err1 := b.rdb.ZRangeWithScores(t.Context(), k.agenda(), 0, -1).Result()
					hashes := map[string]map[string]string{}
					var err2 error
					for _, key := range []string{k.attempts(), k.tokens(), k.epoch(), k.fence()} {
						if hashes[key], err2 = b.rdb.HGetAll(t.Context(), key).Result(); err2 != nil {
							break
						}
					}
					if err := errors.Join(err1, err2); err != nil {
						t.Fatal(err)
					}
					return func() {
						keys := []string{k.agenda(), k.lockPrefix() + occ}
						for key := range hashes {
							keys = append(keys, key)
						}
						err := b.rdb.Del(t.Context(), keys...).Err()
						if err == nil && len(agenda) > 0 {
							err = b.rdb.ZAdd(t.Context(), k.agenda(), agenda...).Err()
						}
						for key, h := range hashes {
							if err == nil && len(h) > 0 {
								err = b.rdb.HSet(t.Context(), key, h).Err()
							}
						}
						if err != nil {
							t.Fatal(err)
						}
					}
				}
				b.clockTo(t, due)
				restore := snapshot()
				cl, _, _ := b.claimDue(t, q, occ, due)
				if ok := mustComplete(t, q, Completion{Claim: cl}); !ok[0] {
					t.Fatal("completion refused")
				}
				// Restore the snapshot taken before the claim, as a restart from an older
				// RDB file would.
				restore()
				found := b.mustClaim(t, q, shard, 10) // finds the loss (guard on) or claims
				if _, err := q.Recover(t.Context()); err != nil {
					t.Fatal(err)
				}
				again := len(found.Claims)
				b.clockTo(t, b.now(t).Add(b.lease+time.Millisecond))
				again += len(b.mustClaim(t, q, shard, 10).Claims)
				if off && again == 0 {
					t.Error("with the guard off the finished occurrence was not claimed again: this test shows nothing")
				}
				if !off && again != 0 {
					t.Errorf("a finished occurrence was claimed %d more times after Redis went back", again)
				}
			})
		})
	}
}

// TestGuardAfterOneLostCallOthersCaughtUp: a failover to a replica that missed exactly one
// call, node c's completion, after which another node calls first and brings the shard's
// count of calls back to what c was answered. The shard's count alone shows nothing amiss
// then; c's own count does, so c learns of the loss, writes its completion back, and the
// occurrence does not run again once c's lease has expired. Real Redis only: the failover
// is a DUMP of every key before the lost call and a RESTORE after it.
func TestGuardAfterOneLostCallOthersCaughtUp(t *testing.T) {
	b := newRedis(t)
	ctx := t.Context()
	qa, qc := b.queue(Config{Node: "a"}), b.queue(Config{Node: "c"})
	const job = "lost-one"
	shard := ShardOf(job)
	due := b.now(t).Add(b.lease / 10)
	mustExpand(t, qa, expansion(job, due))
	occ := occID(job, due)
	b.mustClaim(t, qa, shard, 10) // a knows the epoch (nothing is due yet)
	cl, _, _ := b.claimDue(t, qc, occ, due)

	type dumped struct {
		key, value string
		ttl        time.Duration
	}
	keys, err := b.rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var replica []dumped
	for _, k := range keys {
		v, err1 := b.rdb.Dump(ctx, k).Result()
		ttl, err2 := b.rdb.PTTL(ctx, k).Result()
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		replica = append(replica, dumped{k, v, max(ttl, 0)})
	}
	if ok := mustComplete(t, qc, Completion{Claim: cl}); !ok[0] {
		t.Fatal("completion refused")
	}
	// The failover: the promoted replica holds everything but c's completion.
	if err := b.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for _, d := range replica {
		if err := b.rdb.Restore(ctx, d.key, d.ttl, d.value).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.mustClaim(t, qa, shard, 10); len(got.Claims) != 0 { // a calls first
		t.Fatalf("a claimed %v from a shard whose only occurrence c holds", got.Claims)
	}
	b.mustClaim(t, qc, shard, 10)
	losses, err := qc.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(losses) != 1 || losses[0].Shard != shard {
		t.Fatalf("c learned of losses %+v, want one, of shard %d", losses, shard)
	}
	b.clockTo(t, b.now(t).Add(b.lease+100*time.Millisecond)) // past c's lease and the hold
	for _, q := range []*Queue{qa, qc} {
		if got := b.mustClaim(t, q, shard, 10); len(got.Claims) != 0 {
			t.Errorf("%s, which c finished before the failover, was claimed again: %+v", occ, got.Claims)
		}
	}
}

// TestSettleAfterAnOutage: a shard that went without any call for longer than SettleAfter
// was unreachable; a lease that expired meanwhile, with no claim since, still counts as held
// for a while (as long as the gap, at least two seconds, at most a lease), so its holder can
// report, and only then is it taken over. Before the gap, an expired lease is taken over at
// once.
func TestSettleAfterAnOutage(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		cfg := Config{SettleAfter: b.lease / 2}
		holder, other := b.queue(cfg), b.queue(cfg)
		const job = "settle"
		shard := ShardOf(job)
		due := b.now(t).Add(b.lease / 10)
		mustExpand(t, holder, expansion(job, due))
		reported, _, at := b.claimDue(t, holder, occID(job, due), due)
		// No call reaches the shard for a lease and more: the lease expires in the gap.
		back := at.Add(b.lease + b.lease/2)
		b.clockTo(t, back)
		settle := min(max(back.Sub(at), 2*time.Second), b.lease)
		c := b.claimNothing(t, other, shard, back.Add(settle))
		if head := c.Heads[shard]; head.Before(back.Add(settle - 50*time.Millisecond)) {
			t.Errorf("head %v after the gap, want the settle's end, about %v", head, back.Add(settle))
		}
		if ok := mustComplete(t, holder, Completion{Claim: reported}); !ok[0] {
			t.Error("the holder's completion after the gap was refused")
		}

		// A holder that does not report is taken over when the settle ends.
		due2 := b.now(t).Add(b.lease / 10)
		mustExpand(t, holder, expansion(job, due2))
		silent, _, at2 := b.claimDue(t, holder, occID(job, due2), due2)
		back2 := at2.Add(b.lease + b.lease/2)
		b.clockTo(t, back2)
		b.claimNothing(t, other, shard, back2.Add(time.Second))
		// The fleet calls on, as live nodes do, so no new gap opens.
		end := back2.Add(min(max(back2.Sub(at2), 2*time.Second), b.lease))
		for at := back2.Add(cfg.SettleAfter / 2); at.Before(end); at = at.Add(cfg.SettleAfter / 2) {
			b.clockTo(t, at)
			if _, err := b.claim(t.Context(), other, []int{shard}, 0); err != nil {
				t.Fatal(err)
			}
		}
		taken, _, _ := b.claimDue(t, other, occID(job, due2), end)
		if taken.Attempt != 2 || taken.Token <= silent.Token {
			t.Errorf("takeover after the settle = %+v, want attempt 2 and a token above %d", taken, silent.Token)
		}
	})
}

// TestBadKeyStaysInItsShard: a key of the wrong type in one shard fails that shard's calls
// alone, with an error naming the shard, the key and the jobs; the other shards' claims and
// completions go through in the same round trip, and the shard works again once the key is
// gone.
func TestBadKeyStaysInItsShard(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		good, bad := "good", "bad"
		for ShardOf(bad) == ShardOf(good) {
			bad += "x"
		}
		mate := "mate"
		for ShardOf(mate) != ShardOf(bad) {
			mate += "x"
		}
		due := b.now(t).Add(b.lease / 10)
		mustExpand(t, q, expansion(good, due), expansion(bad, due), expansion(mate, due))
		b.clockTo(t, due)
		badKey := q.keys(ShardOf(bad)).fence()
		if err := b.rdb.Set(t.Context(), badKey, "oops", 0).Err(); err != nil {
			t.Fatal(err)
		}
		c, err := b.claim(t.Context(), q, []int{ShardOf(good), ShardOf(bad)}, 10)
		if err != nil {
			t.Fatalf("Claim = %v, want the good shard's claims and the bad one's error apart", err)
		}
		if len(c.Claims) != 1 || c.Claims[0].Job != good {
			t.Errorf("claims %+v, want the good job's", c.Claims)
		}
		var se *ShardError
		if err := c.Failed[ShardOf(bad)]; !errors.As(err, &se) || se.Shard != ShardOf(bad) || !strings.Contains(se.Key, badKey) {
			t.Errorf("the bad shard's error = %v, want a ShardError naming shard %d and key %s", err, ShardOf(bad), badKey)
		}
		if ok := mustComplete(t, q, Completion{Claim: c.Claims[0], Record: &Record{Occurrence: c.Claims[0].Occurrence, Job: good, Status: StatusSucceeded}}); !ok[0] {
			t.Error("the good job's completion was refused")
		}

		// A completion whose job's history key is bad fails alone, naming its job; another
		// job's of the same shard, in the same call, is recorded.
		hist := q.keys(ShardOf(good)).historyPrefix() + good
		if err := b.rdb.Del(t.Context(), badKey).Err(); err != nil {
			t.Fatal(err)
		}
		c2 := b.mustClaim(t, q, ShardOf(bad), 10)
		var cl, mateCl Claim
		for _, x := range c2.Claims {
			switch x.Job {
			case bad:
				cl = x
			case mate:
				mateCl = x
			}
		}
		if cl.Job == "" || mateCl.Job == "" {
			t.Fatalf("claims %+v, want %s's and %s's", c2.Claims, bad, mate)
		}
		if err := b.rdb.Set(t.Context(), q.keys(ShardOf(bad)).historyPrefix()+bad, "oops", 0).Err(); err != nil {
			t.Fatal(err)
		}
		res, err := q.Complete(t.Context(), []Completion{
			{Claim: cl, Record: &Record{Occurrence: cl.Occurrence, Job: bad, Status: StatusSucceeded}},
			{Claim: mateCl, Record: &Record{Occurrence: mateCl.Occurrence, Job: mate, Status: StatusSucceeded}},
		})
		if err != nil || len(res.Failed) != 2 || !errors.As(res.Failed[0], &se) || !slices.Contains(se.Jobs, bad) {
			t.Errorf("Complete with a bad history key = %+v, %v; want its error naming job %s", res, err, bad)
		}
		if err == nil && (res.Failed[1] != nil || !res.Accepted[1]) {
			t.Errorf("the same shard's other job: failed %v, accepted %v; want it recorded", res.Failed[1], res.Accepted[1])
		}
		if n, _ := b.rdb.Exists(t.Context(), hist).Result(); n != 1 {
			t.Error("the good job's history is missing")
		}
		// Nothing of the failed completion was applied: once the key is gone it completes.
		if err := b.rdb.Del(t.Context(), q.keys(ShardOf(bad)).historyPrefix()+bad).Err(); err != nil {
			t.Fatal(err)
		}
		if ok := mustComplete(t, q, Completion{Claim: cl, Record: &Record{Occurrence: cl.Occurrence, Job: bad, Status: StatusSucceeded}}); !ok[0] {
			t.Error("the completion was refused once the bad key was gone")
		}
		if h := b.history(t, q, bad); len(h) != 1 {
			t.Errorf("history of %s: %+v, want the one record", bad, h)
		}
	})
}

// TestBadKeyOfOneOccurrenceStaysWithIt: a key of one occurrence's own that holds another
// type (its lock, or its job's history when the claim records it skipped) keeps that
// occurrence alone from being decided: the call claims the rest of its shard, names the
// key, and leaves the occurrence a lease, so that it does not hold up the shard's head.
// Once the key is deleted, the occurrence is decided as usual.
func TestBadKeyOfOneOccurrenceStaysWithIt(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		jobs := sameShard("stuck", 3)
		locked, paused, mate := jobs[0], jobs[1], jobs[2]
		shard := ShardOf(locked)
		k := q.keys(shard)
		due := b.now(t).Add(b.lease / 10)
		mustExpand(t, q, expansion(locked, due), expansion(paused, due), expansion(mate, due))
		if err := q.Pause(t.Context(), paused, Pause{Note: "test"}); err != nil {
			t.Fatal(err)
		}
		lockKey := k.lockPrefix() + occID(locked, due)
		histKey := k.historyPrefix() + paused
		for _, key := range []string{lockKey, histKey} {
			if err := b.rdb.HSet(t.Context(), key, "oops", "1").Err(); err != nil {
				t.Fatal(err)
			}
		}
		b.clockTo(t, due)
		c := b.mustClaim(t, q, shard, 10)
		if len(c.Failed) != 0 {
			t.Errorf("Failed = %v, want no shard failure", c.Failed)
		}
		if len(c.Claims) != 1 || c.Claims[0].Job != mate {
			t.Errorf("claims %+v, want %s's alone", c.Claims, mate)
		}
		want := []Stuck{
			{Occurrence: occID(locked, due), Job: locked, Key: lockKey},
			{Occurrence: occID(paused, due), Job: paused, Key: histKey},
		}
		slices.SortFunc(c.Stuck, func(a, b Stuck) int { return strings.Compare(a.Key, b.Key) })
		slices.SortFunc(want, func(a, b Stuck) int { return strings.Compare(a.Key, b.Key) })
		if diff := cmp.Diff(want, c.Stuck); diff != "" {
			t.Errorf("Stuck (-want +got):\n%s", diff)
		}
		if head, ok := c.Heads[shard]; !ok || !head.After(b.now(t)) {
			t.Errorf("head %v (%v), want after now: the stuck occurrences wait a lease", head, ok)
		}

		if len(c.Claims) == 1 {
			mustComplete(t, q, Completion{Claim: c.Claims[0], Record: &Record{Occurrence: c.Claims[0].Occurrence, Job: mate, Status: StatusSucceeded}})
		}

		// Deleted, the keys let their occurrences be decided: one claimed, one skipped.
		if err := b.rdb.Del(t.Context(), lockKey, histKey).Err(); err != nil {
			t.Fatal(err)
		}
		b.clockTo(t, b.now(t).Add(b.lease+time.Second))
		c = b.mustClaim(t, q, shard, 10)
		if len(c.Stuck) != 0 || len(c.Claims) != 1 || c.Claims[0].Job != locked {
			t.Errorf("after the keys were deleted: claims %+v, stuck %+v; want %s's claimed", c.Claims, c.Stuck, locked)
		}
		if len(c.Decided) != 1 || c.Decided[0].Occurrence != occID(paused, due) || c.Decided[0].Status != StatusSkipped {
			t.Errorf("after the keys were deleted: decided %+v, want %s skipped", c.Decided, occID(paused, due))
		}
	})
}

// TestKeptHashOfAnotherTypeFailsOnlyItsUse: a claim call sets its shard's kept field in the
// claims' hashes (keepTables in lua/lib.lua) at every call; one of those keys holding another
// type fails only the calls that use it, as before, not every call of its shard: one that
// claims nothing still answers.
func TestKeptHashOfAnotherTypeFailsOnlyItsUse(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		shard := ShardOf("idle")
		if err := b.rdb.Set(t.Context(), q.keys(shard).running(), "oops", 0).Err(); err != nil {
			t.Fatal(err)
		}
		c := b.mustClaim(t, q, shard, 10)
		if err := c.Failed[shard]; err != nil {
			t.Errorf("a call that claims nothing failed on a key it does not use: %v", err)
		}
	})
}

// TestClaimHashesStayTables: on a real Redis, once a claim call has run, the shard's hashes
// that the claims fill (fence, attempts, running, tokens) are hash tables, and stay so after
// the occurrence finishes and its fields are gone (keepTables in lua/lib.lua): the next
// burst does not rebuild them in Redis' compact encoding, scanned end to end.
func TestClaimHashesStayTables(t *testing.T) {
	b := newRedis(t)
	q := b.queue(Config{})
	job := "kept"
	due := b.now(t).Add(b.lease / 10)
	mustExpand(t, q, expansion(job, due))
	cl, _, _ := b.claimDue(t, q, occID(job, due), due)
	if ok := mustComplete(t, q, Completion{Claim: cl, Record: &Record{Occurrence: cl.Occurrence, Job: job, Status: StatusSucceeded}}); !ok[0] {
		t.Fatal("completion refused")
	}
	k := q.keys(ShardOf(job))
	for _, key := range []string{k.fence(), k.attempts(), k.running(), k.tokens()} {
		if enc, err := b.rdb.ObjectEncoding(t.Context(), key).Result(); err != nil || enc != "hashtable" {
			t.Errorf("OBJECT ENCODING %s = %q, %v; want hashtable", key, enc, err)
		}
	}
}

// TestRecentRingKeepsTheNewest checks the ring of remembered completions: oldest first,
// the newest max once more came, through its growth, its wrapping and its drops, with a
// dropped completion's record released.
func TestRecentRingKeepsTheNewest(t *testing.T) {
	var r recentRing
	const max = 40
	want := []int{}
	for i := range 200 {
		r.push(completion{shard: i, record: strconv.Itoa(i)}, max)
		want = append(want, i)
		if len(want) > max {
			want = want[len(want)-max:]
		}
		if i%7 == 3 { // drops mid-way, so that the ring wraps before it is full
			r.dropOldest()
			want = want[1:]
		}
		var got []int
		for j, c := range r.all {
			if j != len(got) {
				t.Fatalf("after %d: all yielded index %d at position %d", i, j, len(got))
			}
			got = append(got, c.shard)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("after pushing %d: the ring holds %v, want %v", i, got, want)
		}
	}
	if len(r.buf) != max {
		t.Errorf("the ring grew to %d, want its max, %d", len(r.buf), max)
	}
	for r.n > 0 {
		r.dropOldest()
	}
	for _, c := range r.buf {
		if c.record != "" {
			t.Fatalf("a dropped completion's record is still held: %q", c.record)
		}
	}
}

// TestRememberForgetsTheStale checks that the guard forgets a completion once a newer one
// is recentKeep younger.
func TestRememberForgetsTheStale(t *testing.T) {
	g := newGuard(false, time.Second, "n")
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	g.remember(completion{shard: 1, at: t0})
	g.remember(completion{shard: 2, at: t0.Add(recentKeep)})
	g.remember(completion{shard: 3, at: t0.Add(recentKeep + time.Millisecond)})
	var got []int
	for _, c := range g.recent.all {
		got = append(got, c.shard)
	}
	if !slices.Equal(got, []int{2, 3}) {
		t.Errorf("remembered %v, want [2 3]: the first is older than recentKeep", got)
	}
}
