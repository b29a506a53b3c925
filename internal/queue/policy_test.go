package queue

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/lease"
)

// The overlap and catch-up policies, decided by the claim script: what a second node sees
// depends only on what Redis holds, so one queue per step stands for any node.

// policyExpansion is job's expansion at dues under p; each occurrence's next is the one
// after it, and the last one's is next.
func policyExpansion(job string, p Policy, next time.Time, dues ...time.Time) Expansion {
	e := expansion(job, dues...)
	e.Policy = p
	for i := range e.Due {
		if i+1 < len(e.Due) {
			e.Next = append(e.Next, e.Due[i+1])
		} else {
			e.Next = append(e.Next, next.Truncate(time.Millisecond))
		}
	}
	return e
}

// statuses is job's history as "OCC status: error" lines, oldest first.
func (b *backend) statuses(t *testing.T, q *Queue, job string) []string {
	t.Helper()
	var out []string
	for _, r := range slices.Backward(b.history(t, q, job)) {
		out = append(out, r.Occurrence+" "+string(r.Status)+": "+r.Error)
	}
	return out
}

// running expands job under p at n instants step apart (b.dues) and claims the first when
// it is due: a run going, for the overlap policies to act on.
func (b *backend) running(t *testing.T, q *Queue, job string, p Policy, n int, step time.Duration) ([]time.Time, Claim) {
	t.Helper()
	d := b.dues(t, n, step)
	mustExpand(t, q, policyExpansion(job, p, time.Time{}, d...))
	first, _, _ := b.claimDue(t, q, occID(job, d[0]), d[0])
	return d, first
}

// wantHistory checks job's history, oldest first, as b.statuses writes it.
func (b *backend) wantHistory(t *testing.T, q *Queue, job string, want ...string) {
	t.Helper()
	if got := b.statuses(t, q, job); !slices.Equal(got, want) {
		t.Errorf("history %q, want %q", got, want)
	}
}

// dues returns n instants step apart, the first one step after Redis' clock now.
func (b *backend) dues(t *testing.T, n int, step time.Duration) []time.Time {
	now := b.now(t)
	out := make([]time.Time, n)
	for i := range out {
		out[i] = now.Add(time.Duration(i+1) * step).Truncate(time.Millisecond)
	}
	return out
}

func TestOverlapSkip(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{Node: "n1"})
		const job = "skips"
		d, first := b.running(t, q, job, Policy{Overlap: OverlapSkip}, 3, b.lease/3)

		// d[1] falls due while d[0] runs: recorded as skipped, naming the one running.
		b.clockTo(t, d[1])
		c := b.mustClaim(t, q, ShardOf(job), 10)
		if len(c.Claims) != 0 {
			t.Fatalf("claimed %+v while %s runs", c.Claims, first.Occurrence)
		}
		reason := "skipped: " + first.Occurrence + " was still running (overlap skip)"
		if want := []Decided{{occID(job, d[1]), StatusSkipped, reason}}; !slices.Equal(c.Decided, want) {
			t.Errorf("decided %+v, want %+v", c.Decided, want)
		}
		b.wantHistory(t, q, job, occID(job, d[1])+" skipped: "+reason)
		// Once it finished, the next one runs.
		if ok := mustComplete(t, q, Completion{Claim: first}); !ok[0] {
			t.Fatal("completion refused")
		}
		b.claimDue(t, q, occID(job, d[2]), d[2])
	})
}

// TestOverlapRetryHoldsTheSlot: an occurrence waiting for its retry has not finished, so the
// next one is skipped meanwhile; its own retry is claimed as usual.
func TestOverlapRetryHoldsTheSlot(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "retries"
		step := b.lease / 3
		d, first := b.running(t, q, job, Policy{}, 2, step)
		mustComplete(t, q, Completion{Claim: first, Retry: true, Delay: 2 * step})
		b.clockTo(t, d[1])
		if c := b.mustClaim(t, q, ShardOf(job), 10); len(c.Claims) != 0 {
			t.Fatalf("claimed %+v while %s waits for its retry", c.Claims, first.Occurrence)
		}
		again, _, _ := b.claimDue(t, q, first.Occurrence, b.score(t, q, first.Occurrence))
		if again.Attempt != 2 {
			t.Errorf("retry claimed as attempt %d, want 2", again.Attempt)
		}
	})
}

func TestOverlapBuffer(t *testing.T) {
	for _, tc := range []struct {
		policy Overlap
		// ran are the indexes of the occurrences that run, in order; skipped those
		// recorded as skipped.
		ran, skipped []int
	}{
		{OverlapBufferOne, []int{0, 1}, []int{2}},
		{OverlapBufferAll, []int{0, 1, 2}, nil},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			contract(t, func(t *testing.T, b *backend) {
				q := b.queue(Config{})
				job := "buffers-" + string(tc.policy)
				shard := ShardOf(job)
				d := b.dues(t, 3, b.lease/4)
				mustExpand(t, q, policyExpansion(job, Policy{Overlap: tc.policy}, time.Time{}, d...))
				cl, _, _ := b.claimDue(t, q, occID(job, d[0]), d[0])
				// Both others fall due while the first runs: they wait, or are skipped.
				b.clockTo(t, d[2])
				if c := b.mustClaim(t, q, shard, 10); len(c.Claims) != 0 {
					t.Fatalf("claimed %+v while %s runs", c.Claims, cl.Occurrence)
				}
				ran := []int{0}
				for {
					res, err := q.Complete(t.Context(), []Completion{{Claim: cl}})
					if err != nil || !res.Accepted[0] {
						t.Fatalf("Complete = %+v, %v", res, err)
					}
					c := b.mustClaim(t, q, shard, 10)
					if len(c.Claims) == 0 {
						if len(res.LetIn) != 0 {
							t.Errorf("the completion let one in (%v), but nothing was claimed", res.LetIn)
						}
						break
					}
					if len(c.Claims) != 1 || !slices.Equal(res.LetIn, []int{shard}) {
						t.Fatalf("after completing %s: claims %+v, let in %v; want one waiting occurrence, in shard %d", cl.Occurrence, c.Claims, res.LetIn, shard)
					}
					cl = c.Claims[0]
					i := slices.IndexFunc(d, func(x time.Time) bool { return occID(job, x) == cl.Occurrence })
					if !cl.NotBefore.Equal(d[i]) {
						t.Errorf("%s let in with not-before %v, want its due time", cl.Occurrence, cl.NotBefore)
					}
					ran = append(ran, i)
				}
				if !slices.Equal(ran, tc.ran) {
					t.Errorf("ran %v, want %v", ran, tc.ran)
				}
				var skipped []int
				for _, r := range b.history(t, q, job) {
					if r.Status == StatusSkipped {
						skipped = append(skipped, slices.IndexFunc(d, func(x time.Time) bool { return occID(job, x) == r.Occurrence }))
					}
				}
				if !slices.Equal(skipped, tc.skipped) {
					t.Errorf("skipped %v, want %v", skipped, tc.skipped)
				}
			})
		})
	}
}

// TestOverlapCancelOther: a new occurrence cancels the running one through its holder's
// next renewal and runs once that one completed; one that falls due while the first is
// being cancelled replaces the one waiting.
func TestOverlapCancelOther(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "cancels"
		shard := ShardOf(job)
		d, first := b.running(t, q, job, Policy{Overlap: OverlapCancelOther}, 3, b.lease/4)
		b.clockTo(t, d[1])
		if c := b.mustClaim(t, q, shard, 10); len(c.Claims) != 0 {
			t.Fatalf("claimed %+v before %s ended", c.Claims, first.Occurrence)
		}
		v, err := q.Renew(t.Context(), []lease.Lease{first.Lease()})
		if err != nil || v[0] != lease.Cancelled {
			t.Fatalf("Renew of the run to cancel = %v, %v; want Cancelled", v, err)
		}
		b.clockTo(t, d[2])
		if c := b.mustClaim(t, q, shard, 10); len(c.Claims) != 0 {
			t.Fatalf("claimed %+v before %s ended", c.Claims, first.Occurrence)
		}
		rec := &Record{Occurrence: first.Occurrence, Job: job, Status: StatusCancelled}
		if res, err := q.Complete(t.Context(), []Completion{{Claim: first, Record: rec}}); err != nil || !slices.Equal(res.LetIn, []int{shard}) {
			t.Fatalf("Complete of the cancelled run = %+v, %v; want the newest let in", res, err)
		}
		c := b.mustClaim(t, q, shard, 10)
		if len(c.Claims) != 1 || c.Claims[0].Occurrence != occID(job, d[2]) {
			t.Fatalf("claims %+v, want the newest, %s", c.Claims, occID(job, d[2]))
		}
		b.wantHistory(t, q, job,
			occID(job, d[1])+" skipped: skipped: "+occID(job, d[2])+" replaced it before it started (overlap cancel_other)",
			first.Occurrence+" cancelled: ")
		if v, err := q.Renew(t.Context(), []lease.Lease{c.Claims[0].Lease()}); err != nil || v[0] != lease.Held {
			t.Errorf("Renew of the new run = %v, %v; want Held", v, err)
		}
	})
}

// TestOverlapCancelOtherHolderGone: when the node running the occurrence to cancel is gone,
// its lease decides: once it expired, the next claim records the old run as cancelled and
// lets the new one in.
func TestOverlapCancelOtherHolderGone(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{Node: "n2"})
		const job = "cancels-gone"
		shard := ShardOf(job)
		d, first := b.running(t, q, job, Policy{Overlap: OverlapCancelOther}, 2, b.lease/4)
		b.clockTo(t, d[1])
		b.claimNothing(t, q, shard, b.score(t, q, first.Occurrence))
		// Nobody renews the first lease. At its expiry it is recorded as cancelled, and the
		// new occurrence comes in due (in the same call, or the next).
		b.clockTo(t, b.score(t, q, first.Occurrence))
		var claims []Claim
		deadline := time.Now().Add(5 * time.Second)
		for len(claims) == 0 && time.Now().Before(deadline) {
			claims = b.mustClaim(t, q, shard, 10).Claims
		}
		if len(claims) != 1 || claims[0].Occurrence != occID(job, d[1]) {
			t.Fatalf("claims %+v, want %s", claims, occID(job, d[1]))
		}
		b.wantHistory(t, q, job, first.Occurrence+" cancelled: cancelled: "+occID(job, d[1])+" replaced it (overlap cancel_other)")
	})
}

// TestOverlapNotDecidedAhead: an occurrence claimed ahead of its due time while another runs
// is left in the agenda, undecided, and the reply says to ask again when it is due: by then
// the run may have ended.
func TestOverlapNotDecidedAhead(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "ahead-overlap"
		shard := ShardOf(job)
		d, first := b.running(t, q, job, Policy{}, 2, b.lease/3)
		lead := d[1].Sub(d[0]) + time.Minute
		now := b.now(t)
		c, err := q.Claim(t.Context(), []int{shard}, 10, lead, now.Add(q.CallTimeout()), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Claims) != 0 || len(b.history(t, q, job)) != 0 {
			t.Fatalf("claims %+v, history %v: decided %s before it was due", c.Claims, b.history(t, q, job), occID(job, d[1]))
		}
		if !c.Now.Before(d[1]) {
			t.Fatalf("test too slow: Redis' clock %v passed %v", c.Now, d[1])
		}
		// The head is the first entry's (the running one's lease expiry), unless the one left
		// comes first: then its due time plus the lead, so that the caller asks when it is due.
		want := b.score(t, q, first.Occurrence)
		if d[1].Add(lead).Before(want) {
			want = d[1].Add(lead)
		}
		if h := c.Heads[shard]; !h.Equal(want) {
			t.Errorf("head %v, want %v", h, want)
		}
		mustComplete(t, q, Completion{Claim: first})
		b.claimDue(t, q, occID(job, d[1]), d[1])
	})
}

// TestManualOccurrencesWait: an occurrence added by hand (trigger, backfill) is never
// skipped for overlap: it waits for the running one, even under skip.
func TestManualOccurrencesWait(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "manual-wait"
		shard := ShardOf(job)
		d, first := b.running(t, q, job, Policy{}, 1, b.lease/3)
		id := occID(job, d[0]) + "~m1"
		if _, err := q.Trigger(t.Context(), job, id); err != nil {
			t.Fatal(err)
		}
		if c := b.mustClaim(t, q, shard, 10); len(c.Claims) != 0 {
			t.Fatalf("claimed %+v while %s runs", c.Claims, first.Occurrence)
		}
		if res := mustComplete(t, q, Completion{Claim: first}); !res[0] {
			t.Fatal("completion refused")
		}
		if c := b.mustClaim(t, q, shard, 10); len(c.Claims) != 1 || c.Claims[0].Occurrence != id {
			t.Fatalf("claims %+v, want the triggered %s", c.Claims, id)
		}
		if h := b.history(t, q, job); len(h) != 0 {
			t.Errorf("history %+v, want nothing skipped", h)
		}
	})
}

func TestOverlapAllow(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "allows"
		d := b.dues(t, 2, b.lease/3)
		mustExpand(t, q, policyExpansion(job, Policy{Overlap: OverlapAllow}, time.Time{}, d...))
		b.claimDue(t, q, occID(job, d[0]), d[0])
		b.claimDue(t, q, occID(job, d[1]), d[1])
	})
}

// TestCatchup: occurrences that fell due while no claim call came for longer than Away are
// run or recorded as missed per their job's policy; one that falls due after the fleet is
// back runs whatever the policy.
func TestCatchup(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		step := b.lease / 4
		q := b.queue(Config{Away: 2 * step})
		jobs := sameShard("catchup", 4)
		shard := ShardOf(jobs[0])
		d := b.dues(t, 6, step)
		policies := []Policy{
			{Overlap: OverlapAllow, Catchup: CatchupNone},
			{Overlap: OverlapAllow, Catchup: CatchupLatest},
			{Overlap: OverlapAllow, Catchup: CatchupAll},
			{Overlap: OverlapAllow, Catchup: CatchupAll, CatchupWindow: 5 * step / 2},
		}
		var exps []Expansion
		for i, j := range jobs {
			exps = append(exps, policyExpansion(j, policies[i], d[5].Add(step), d[:4]...))
		}
		mustExpand(t, q, exps...)
		b.claimNothing(t, q, shard, d[0]) // the fleet is up, then goes away

		b.clockTo(t, d[4])
		claimed := map[string][]int{}
		c := b.mustClaim(t, q, shard, 20)
		for _, cl := range c.Claims {
			i := slices.IndexFunc(d, func(x time.Time) bool { return occID(cl.Job, x) == cl.Occurrence })
			claimed[cl.Job] = append(claimed[cl.Job], i)
		}
		if late := c.Now.Sub(d[2]); late > 5*step/2 {
			t.Fatalf("test too slow: claimed %v after d[2], past the window of the last job", late)
		}
		for i, want := range [][]int{nil, {3}, {0, 1, 2, 3}, {2, 3}} {
			got := claimed[jobs[i]]
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s (%+v): ran %v, want %v", jobs[i], policies[i], got, want)
			}
			missed := 0
			for _, r := range b.history(t, q, jobs[i]) {
				if r.Status != StatusMissed || !strings.Contains(r.Error, "no node was claiming") {
					t.Errorf("%s: record %+v, want missed while no node was claiming", jobs[i], r)
				}
				missed++
			}
			if missed != 4-len(want) {
				t.Errorf("%s: %d missed records, want %d", jobs[i], missed, 4-len(want))
			}
		}

		// Back to normal: the next occurrence runs on time under every policy.
		var more []Expansion
		for i, j := range jobs {
			more = append(more, policyExpansion(j, policies[i], d[5].Add(step), d[5]))
		}
		mustExpand(t, q, more...)
		b.clockTo(t, d[5])
		if c := b.mustClaim(t, q, shard, 20); len(c.Claims) != len(jobs) {
			t.Errorf("claims %+v after the fleet came back, want one per job", c.Claims)
		}
	})
}

// TestExpandRecordsDropped: the record of occurrences passed over as older than the
// catch-up window is written once, by the first node to resume the job.
func TestExpandRecordsDropped(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "dropped"
		now := b.now(t)
		mustExpand(t, q, expansion(job, now.Add(time.Second)))
		until := now.Add(time.Hour).Truncate(time.Millisecond)
		x := expansion(job, until.Add(time.Second))
		x.Dropped = &Record{Job: job, Status: StatusMissed, Error: "older than the catch-up window"}
		x.DroppedUntil = until
		var wrote [][]string
		for range 2 {
			res, err := q.Expand(t.Context(), []Expansion{x})
			if err != nil {
				t.Fatalf("Expand: %v", err)
			}
			wrote = append(wrote, res.Dropped)
		}
		// The call that wrote it says so, for the node to count it.
		if diff := cmp.Diff([][]string{{job}, nil}, wrote); diff != "" {
			t.Errorf("Expanded.Dropped of the two calls (-want +got):\n%s", diff)
		}
		h := b.history(t, q, job)
		if len(h) != 1 || h[0].Status != StatusMissed {
			t.Errorf("history %+v, want one missed record", h)
		}
	})
}

// TestCatchupLateAdded: occurrences of a known job that are added only after they were due
// (no node was expanding) fall under the job's catch-up policy too, even when no claim call
// ever saw the gap (a fleet that never ran, or a Redis that came back without its claims).
func TestCatchupLateAdded(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "late-added"
		now := b.now(t)
		// The job last ran ten seconds ago; the fleet went down, and comes back two
		// occurrences later.
		if err := b.rdb.HSet(t.Context(), q.keys(ShardOf(job)).watermarks(), job, now.Add(-10*time.Second).UnixMilli()).Err(); err != nil {
			t.Fatal(err)
		}
		d := []time.Time{now.Add(-3 * time.Second), now.Add(-2 * time.Second)}
		mustExpand(t, q, policyExpansion(job, Policy{}, now.Add(time.Hour), d...))
		c := b.mustClaim(t, q, ShardOf(job), 10)
		if len(c.Claims) != 1 || c.Claims[0].Occurrence != occID(job, d[1]) {
			t.Fatalf("claims %+v, want only the latest, %s", c.Claims, occID(job, d[1]))
		}
		b.wantHistory(t, q, job, occID(job, d[0])+" missed: missed: it fell due while no node was running, and a later occurrence is due too (catchup latest)")
	})
}

// TestDefaultPolicyWithoutExpansion: a job no node expanded yet (its occurrences were only
// triggered) gets the default policy, so two triggers do not run at once.
func TestDefaultPolicyWithoutExpansion(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "never-expanded"
		now := b.now(t)
		ids := []string{occID(job, now) + "~a", occID(job, now) + "~b"}
		if n, err := q.Trigger(t.Context(), job, ids...); err != nil || n != 2 {
			t.Fatalf("Trigger = %d, %v", n, err)
		}
		c := b.mustClaim(t, q, ShardOf(job), 10)
		if len(c.Claims) != 1 {
			t.Fatalf("claims %+v, want one: the other waits under the default overlap policy", c.Claims)
		}
		mustComplete(t, q, Completion{Claim: c.Claims[0]})
		next := b.mustClaim(t, q, ShardOf(job), 10)
		if len(next.Claims) != 1 || next.Claims[0].Occurrence == c.Claims[0].Occurrence {
			t.Fatalf("claims %+v after %s completed, want the other trigger", next.Claims, c.Claims[0].Occurrence)
		}
	})
}

// TestNewestDefinitionWins: a newer definition of a job replans it: what the old one added
// and nobody claimed leaves the agenda, the new schedule's occurrences come in from now on
// (also before the old watermark), a claimed one stays; an older definition adds nothing.
func TestNewestDefinitionWins(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{Node: "newer-node"})
		const job = "redefined"
		shard := ShardOf(job)
		now := b.now(t)
		step := b.lease
		at := func(n int) time.Time { return now.Add(time.Duration(n) * step / 2).Truncate(time.Millisecond) }
		old := expansion(job, at(2), at(4), at(6), at(8))
		old.Definition, old.Loaded = "aaaa", now.Add(-time.Hour)
		mustExpand(t, q, old)
		claimed, _, _ := b.claimDue(t, q, occID(job, at(2)), at(2))

		// The new schedule: the shared instant at(6), and at(5), at(7), at(9).
		newer := expansion(job, at(5), at(6), at(7), at(9))
		newer.Definition, newer.Loaded = "bbbb", now
		res, err := q.Expand(t.Context(), []Expansion{newer})
		if err != nil || len(res.Superseded) != 0 || !res.Watermarks[job].Equal(at(9)) {
			t.Fatalf("Expand of the newer definition = %+v, %v; want it in force, watermark %v", res, err, at(9))
		}
		if b.now(t).After(at(4)) {
			t.Fatalf("test too slow: at(4) passed before the new definition came")
		}
		got := b.rdb.ZRange(t.Context(), q.keys(shard).agenda(), 0, -1).Val()
		slices.Sort(got)
		want := []string{claimed.Occurrence, occID(job, at(5)), occID(job, at(6)), occID(job, at(7)), occID(job, at(9))}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("agenda %q, want %q: the claimed one, and the new schedule's", got, want)
		}

		stale := expansion(job, at(10))
		stale.Definition, stale.Loaded = "aaaa", now.Add(-time.Hour)
		res, err = q.Expand(t.Context(), []Expansion{stale})
		if err != nil || len(res.Superseded) != 1 || res.Superseded[job] != "newer-node" {
			t.Fatalf("Expand of the older definition = %+v, %v; want it superseded by newer-node's", res, err)
		}
		if _, err := b.rdb.ZScore(t.Context(), q.keys(shard).agenda(), occID(job, at(10))).Result(); err == nil {
			t.Error("the older definition added an occurrence")
		}
		// The same definition from another node, loaded later, changes nothing.
		again := expansion(job, at(9), at(11))
		again.Definition, again.Loaded = "bbbb", now.Add(time.Minute)
		if res := mustExpand(t, q, again); !res[job].Equal(at(11)) {
			t.Errorf("watermark %v after the same definition again, want %v", res[job], at(11))
		}
		if n := b.zcard(t, q, shard); n != int64(len(want)+1) {
			t.Errorf("agenda holds %d, want %d: nothing removed by the same definition", n, len(want)+1)
		}

		// A node that yields the job claims none of its occurrences, and is not told to
		// ask again for them; another node claims them.
		b.clockTo(t, at(5))
		c, err := q.Claim(t.Context(), []int{shard}, 10, 0, b.now(t).Add(q.CallTimeout()), []string{job})
		if err != nil || len(c.Claims) != 0 {
			t.Fatalf("claims %+v, %v by a node that yields the job, want none", c.Claims, err)
		}
		if h, ok := c.Heads[shard]; ok && !h.After(c.Now) {
			t.Errorf("head %v at %v: the yielding node would ask again at once", h, c.Now)
		}
		if c := b.mustClaim(t, q, shard, 10); !slices.ContainsFunc(c.Claims, func(cl Claim) bool { return cl.Occurrence == occID(job, at(5)) }) {
			t.Errorf("claims %+v, want %s claimed by a node that runs the definition in force", c.Claims, occID(job, at(5)))
		}
	})
}

// TestDroppedDefinitionIsWithdrawn: a node that drops a job from its files withdraws the
// definition it put in force (and only its own), so an older one elsewhere is in force again.
func TestDroppedDefinitionIsWithdrawn(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		const job = "dropped-job"
		now := b.now(t)
		older, newer := b.queue(Config{Node: "old"}), b.queue(Config{Node: "new"})
		x := expansion(job)
		x.Definition, x.Loaded = "bbbb", now
		mustExpand(t, newer, x)
		stale := expansion(job)
		stale.Definition, stale.Loaded = "aaaa", now.Add(-time.Minute)
		withdraw := Expansion{Job: job, Definition: "-"}
		for _, step := range []struct {
			q          *Queue
			x          Expansion
			superseded bool
		}{
			{older, stale, true},     // the newer definition is in force
			{older, withdraw, false}, // not the old node's to withdraw
			{older, stale, true},
			{newer, withdraw, false}, // the new node drops the job
			{older, stale, false},    // the old definition is in force again
		} {
			res, err := step.q.Expand(t.Context(), []Expansion{step.x})
			if _, over := res.Superseded[job]; err != nil || over != step.superseded {
				t.Fatalf("Expand of %q by %s = %+v, %v; want superseded %v", step.x.Definition, step.q.cfg.Node, res, err, step.superseded)
			}
		}
	})
}
