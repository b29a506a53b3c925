package queue

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Broadcast and sharded occurrences: the claimed occurrence is replaced by its parts, each
// an occurrence of its own; the completion that ends the last part ends the parent, once.

// partID is cron.PartID, which this package does not import.
func partID(parent string, i, n int) string {
	return parent + "~part-" + strconv.Itoa(i) + "-of-" + strconv.Itoa(n)
}

// claimParts claims from shard until it holds want (part ids), and fails on anything else.
func (b *backend) claimParts(t *testing.T, q *Queue, shard int, want ...string) map[string]Claim {
	t.Helper()
	got := map[string]Claim{}
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < len(want) {
		for _, c := range b.mustClaim(t, q, shard, 10).Claims {
			if !slices.Contains(want, c.Occurrence) {
				t.Fatalf("claimed %s, want only %v", c.Occurrence, want)
			}
			got[c.Occurrence] = c
		}
		if len(got) == len(want) {
			break
		}
		if b.mr != nil || time.Now().After(deadline) {
			t.Fatalf("claimed %v, want %v", got, want)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	return got
}

func (b *backend) records(t *testing.T, q *Queue, job, occ string) []Record {
	t.Helper()
	var out []Record
	for _, r := range b.history(t, q, job) {
		if r.Occurrence == occ {
			out = append(out, r)
		}
	}
	return out
}

// TestFanOutJoin: a sharded occurrence is replaced by its parts, idempotently and only by
// its holder; it keeps its job's overlap slot while they run; a part is retried on its own;
// the last part's completion, re-sent, records the parent once, frees the slot for the
// occurrence waiting for it, and writes the parent's dependents; a failed part fails the
// parent and raises its failure alert.
func TestFanOutJoin(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{Node: "a"})
		const job = "split"
		down := otherShard("after-split", job)
		d := b.dues(t, 3, b.lease/4)
		e := expansion(job, d...)
		e.Policy = Policy{Overlap: OverlapBufferOne, Catchup: CatchupAll, CatchupWindow: time.Hour}
		mustExpand(t, q, e)
		shard := ShardOf(job)

		occ := occID(job, d[0])
		cl, _, _ := b.claimDue(t, q, occ, d[0])
		ok := []Dependent{{Job: down, Occurrence: depID(down, occ), ScheduledAt: d[0], Needed: 1, Met: true}}
		// The parts fall due after their parent, as the engine has them (an idle poll later).
		f := FanOut{Claim: cl, Parts: 3, Node: "a", Due: d[0].Add(b.lease / 8), ScheduledAt: d[0], Alert: occ + "~alert-failure", Succeeded: ok}
		stale := f
		stale.Claim.Token--
		if err := q.FanOut(t.Context(), stale); !errors.Is(err, ErrNotFannedOut) {
			t.Fatalf("FanOut with a stale token: %v, want ErrNotFannedOut", err)
		}
		for range 2 { // a re-sent call answers as the first
			if err := q.FanOut(t.Context(), f); err != nil {
				t.Fatalf("FanOut: %v", err)
			}
		}
		if b.agendaHas(t, q, job, occ) {
			t.Fatal("the parent is still on the agenda")
		}
		parts := []string{partID(occ, 0, 3), partID(occ, 1, 3), partID(occ, 2, 3)}
		for _, p := range parts {
			if !b.agendaHas(t, q, job, p) {
				t.Fatalf("part %s is not on the agenda", p)
			}
		}
		// The parent's late completion is refused: its parts run it.
		if got := mustComplete(t, q, Completion{Claim: cl, Record: &Record{Occurrence: occ, Job: job, Status: StatusSucceeded}}); got[0] {
			t.Fatal("the fanned-out parent's own completion was accepted")
		}

		b.clockTo(t, f.Due)
		claims := b.claimParts(t, q, shard, parts...)
		done := func(c Claim, s Status) Completion {
			return Completion{Claim: c, Record: &Record{Occurrence: c.Occurrence, Job: job, Attempt: c.Attempt, Status: s}}
		}
		// The next occurrence falls due while the parts run: it waits for the slot.
		b.clockTo(t, d[1])
		b.mustClaim(t, q, shard, 10)
		if b.agendaHas(t, q, job, occID(job, d[1])) {
			t.Fatal("the next occurrence did not wait for the fanned-out one")
		}
		if got := mustComplete(t, q, done(claims[parts[0]], StatusSucceeded)); !got[0] {
			t.Fatal("part 0 refused")
		}
		// Part 1 fails once and is retried on its own.
		retry := done(claims[parts[1]], StatusRetrying)
		retry.Retry, retry.Delay = true, time.Millisecond
		if got := mustComplete(t, q, retry); !got[0] {
			t.Fatal("retry of part 1 refused")
		}
		b.clockTo(t, b.now(t).Add(2*time.Millisecond))
		again := b.claimParts(t, q, shard, parts[1])[parts[1]]
		if again.Attempt != 2 {
			t.Fatalf("part 1 retried with attempt %d, want 2", again.Attempt)
		}
		if got := mustComplete(t, q, done(again, StatusSucceeded)); !got[0] {
			t.Fatal("part 1 refused")
		}
		if n := len(b.records(t, q, job, occ)); n != 0 {
			t.Fatalf("the parent has %d records before its last part ended", n)
		}
		last := done(claims[parts[2]], StatusSucceeded)
		res, err := q.Complete(t.Context(), []Completion{last})
		if err != nil || !res.Accepted[0] || !slices.Contains(res.LetIn, shard) {
			t.Fatalf("last part: %+v, %v; want accepted, letting the next occurrence in", res, err)
		}
		if got := mustComplete(t, q, last); !got[0] {
			t.Fatal("re-sent completion of the last part refused")
		}
		recs := b.records(t, q, job, occ)
		if len(recs) != 1 || recs[0].Status != StatusSucceeded || recs[0].FencingToken != cl.Token || recs[0].Attempt != cl.Attempt ||
			recs[0].Node != "a" || !recs[0].ScheduledAt.Equal(d[0]) || b.history(t, q, job)[0].Occurrence != occ {
			t.Fatalf("parent records %+v, want one succeeded with the parent's claim, newest", recs)
		}
		// The parent starts when its parts fall due, not when it was fanned out: claimed
		// ahead of its due time, it would otherwise show a negative lateness.
		if want := f.Due.Truncate(time.Millisecond); !recs[0].StartedAt.Equal(want) {
			t.Errorf("parent started at %v, want when its parts fell due, %v", recs[0].StartedAt, want)
		}
		if box := b.outbox(t, q, job); len(box) != 1 || box[occ+"\t"+down] == "" {
			t.Fatalf("outbox %v, want the parent's dependent", box)
		}
		if b.agendaHas(t, q, job, occ+"~alert-failure") {
			t.Fatal("a parent whose parts succeeded raised its failure alert")
		}
		if n, _ := b.rdb.HLen(t.Context(), q.keys(shard).fan()).Result(); n != 0 {
			t.Fatalf("the join left %d fields", n)
		}

		// The next one, let in, fails in one of its two parts.
		occ1 := occID(job, d[1])
		cl1, _, _ := b.claimDue(t, q, occ1, b.now(t))
		f1 := FanOut{Claim: cl1, Parts: 2, Node: "a", ScheduledAt: d[1], Alert: occ1 + "~alert-failure", Succeeded: ok,
			Failed: []Dependent{{Job: down, Occurrence: depID(down, occ1), ScheduledAt: d[1], Needed: 1}}}
		if err := q.FanOut(t.Context(), f1); err != nil {
			t.Fatal(err)
		}
		p1 := []string{partID(occ1, 0, 2), partID(occ1, 1, 2)}
		claims = b.claimParts(t, q, shard, p1...)
		if got := mustComplete(t, q, done(claims[p1[0]], StatusSucceeded), done(claims[p1[1]], StatusFailed)); !got[0] || !got[1] {
			t.Fatalf("parts refused: %v", got)
		}
		recs = b.records(t, q, job, occ1)
		if len(recs) != 1 || recs[0].Status != StatusFailed || !strings.Contains(recs[0].Error, "1 of 2 parts did not succeed: part 1 failed") {
			t.Fatalf("parent records %+v, want one failed naming part 1", recs)
		}
		if !b.agendaHas(t, q, job, occ1+"~alert-failure") {
			t.Fatal("the failed parent raised no failure alert")
		}
		if box := b.outbox(t, q, job); !strings.Contains(box[occ1+"\t"+down], "\t0\tfailed\t") {
			t.Fatalf("outbox %v, want the failed parent's dependent, not met", box)
		}
	})
}

// TestBroadcastPins: a broadcast's part is left to its node while that node calls the
// shard, and taken over by another once it stopped calling for a lease.
func TestBroadcastPins(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		qa, qb := b.queue(Config{Node: "a"}), b.queue(Config{Node: "b"})
		const job = "everywhere"
		d := b.dues(t, 2, b.lease/4)
		mustExpand(t, qa, expansion(job, d...))
		shard := ShardOf(job)
		b.mustClaim(t, qb, shard, 0) // b calls the shard

		occ := occID(job, d[0])
		cl, _, _ := b.claimDue(t, qa, occ, d[0])
		if err := qa.FanOut(t.Context(), FanOut{Claim: cl, Parts: 3, Nodes: []string{"a", "b", "gone"}, Node: "a", ScheduledAt: d[0]}); err != nil {
			t.Fatal(err)
		}
		// a takes its own part and the one of a node that never called; b's is left to b.
		got := b.claimParts(t, qa, shard, partID(occ, 0, 3), partID(occ, 2, 3))
		if c := b.mustClaim(t, qa, shard, 10); len(c.Claims) != 0 {
			t.Fatalf("a claimed %v, b's part among them", c.Claims)
		}
		got[partID(occ, 1, 3)] = b.claimParts(t, qb, shard, partID(occ, 1, 3))[partID(occ, 1, 3)]
		for _, c := range got {
			mustComplete(t, qa, Completion{Claim: c, Record: &Record{Occurrence: c.Occurrence, Job: job, Status: StatusSucceeded}})
		}
		if recs := b.records(t, qa, job, occ); len(recs) != 1 || recs[0].Status != StatusSucceeded {
			t.Fatalf("parent records %+v, want one succeeded", recs)
		}

		// b stops calling: a lease later a takes its part over.
		occ1 := occID(job, d[1])
		cl1, _, _ := b.claimDue(t, qa, occ1, d[1])
		b.mustClaim(t, qb, shard, 0)
		if err := qa.FanOut(t.Context(), FanOut{Claim: cl1, Parts: 2, Nodes: []string{"a", "b"}, Node: "a", ScheduledAt: d[1]}); err != nil {
			t.Fatal(err)
		}
		mine := b.claimParts(t, qa, shard, partID(occ1, 0, 2))[partID(occ1, 0, 2)]
		mustComplete(t, qa, Completion{Claim: mine, Record: &Record{Occurrence: mine.Occurrence, Job: job, Status: StatusSucceeded}})
		b.clockTo(t, b.now(t).Add(b.lease+10*time.Millisecond))
		b.claimParts(t, qa, shard, partID(occ1, 1, 2))
	})
}

// TestFanOutHoldsMaxConcurrent: an occurrence replaced by its parts counts under its job's
// max_concurrent until its last part ended, however many parts it has; its parts are not
// capped.
func TestFanOutHoldsMaxConcurrent(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{Node: "a"})
		const job = "capped-split"
		shard := ShardOf(job)
		due := b.now(t).Add(time.Second)
		dues := []time.Time{due, due.Add(time.Millisecond)}
		mustExpand(t, q, expansion(job, dues...))
		place := Placement{Limits: map[string]int{job: 1}}
		claim := func() map[string]Claim {
			t.Helper()
			res, err := q.ClaimPlaced(t.Context(), []int{shard}, 64, 1200*time.Millisecond, time.Time{}, nil, place)
			if err != nil {
				t.Fatalf("Claim: %v", err)
			}
			out := map[string]Claim{}
			for _, c := range res.Claims {
				out[c.Occurrence] = c
			}
			return out
		}
		parent := occID(job, dues[0])
		first := claim()
		c, ok := first[parent]
		if !ok || len(first) != 1 {
			t.Fatalf("first claim %v, want only %s", first, parent)
		}
		if err := q.FanOut(t.Context(), FanOut{Claim: c, Parts: 3, Node: "a", ScheduledAt: dues[0]}); err != nil {
			t.Fatal(err)
		}
		// Every part is claimed, though the occurrence holds the cap; the next one is not.
		parts := []string{partID(parent, 0, 3), partID(parent, 1, 3), partID(parent, 2, 3)}
		got := claim()
		if len(got) != 3 {
			t.Fatalf("claimed %v, want the three parts", got)
		}
		for i, p := range parts {
			if got := mustComplete(t, q, Completion{Claim: got[p], Record: &Record{Occurrence: p, Job: job, Status: StatusSucceeded}}); !got[0] {
				t.Fatalf("part %d refused", i)
			}
			if i < len(parts)-1 {
				if got := claim(); len(got) != 0 {
					t.Fatalf("claimed %v while the fanned-out occurrence holds the cap", got)
				}
			}
		}
		if got := claim(); len(got) != 1 || got[occID(job, dues[1])].Occurrence == "" {
			t.Fatalf("claim after the last part %v, want the second occurrence", got)
		}
	})
}
