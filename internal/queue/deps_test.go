package queue

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/redistest"
)

// Dependencies: the completion that records an upstream's end writes what its downstream
// jobs need into its own shard's outbox, atomically; a drain carries it into the downstream's
// shard, where the occurrence is added once every upstream of its instant ended as required.

// depID is cron.DependentID for a scheduled upstream, which this package does not import.
func depID(job, upstream string) string {
	return job + "@" + upstream[strings.LastIndexByte(upstream, '@')+1:] + "~after"
}

// otherShard returns a job name prefixed prefix that lives in none of the shards of jobs.
func otherShard(prefix string, jobs ...string) string {
	for i := 0; ; i++ {
		j := prefix + "-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		if !slices.ContainsFunc(jobs, func(o string) bool { return ShardOf(o) == ShardOf(j) }) {
			return j
		}
	}
}

// ended completes upstream's occurrence at due as status, telling deps, and returns it.
func (b *backend) ended(t *testing.T, q *Queue, job string, due time.Time, status Status, deps ...Dependent) string {
	t.Helper()
	occ := occID(job, due)
	cl, _, _ := b.claimDue(t, q, occ, due)
	c := Completion{Claim: cl, Dependents: deps, Record: &Record{Occurrence: occ, Job: job, Status: status}}
	for range 2 { // a re-sent call finds its marker and writes nothing twice
		if ok := mustComplete(t, q, c); !ok[0] {
			t.Fatalf("completion of %s refused", occ)
		}
	}
	return occ
}

func (b *backend) outbox(t *testing.T, q *Queue, job string) map[string]string {
	t.Helper()
	m, err := b.rdb.HGetAll(t.Context(), q.keys(ShardOf(job)).deps()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustDrain(t *testing.T, q *Queue) (int, []int) {
	t.Helper()
	shards := make([]int, Shards)
	for i := range shards {
		shards[i] = i
	}
	n, in, err := q.DrainDependents(t.Context(), shards)
	if err != nil {
		t.Fatalf("DrainDependents: %v", err)
	}
	return n, in
}

// TestDependentOnce: an upstream's end adds its downstream occurrence, in another shard,
// once, whether the completion or the drain is repeated; a retrying attempt adds nothing.
func TestDependentOnce(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{Node: "n1"})
		const up = "extract"
		down := otherShard("load", up)
		d := b.dues(t, 2, b.lease/3)
		mustExpand(t, q, expansion(up, d...))

		// A retry carries no dependents.
		occ := occID(up, d[0])
		cl, _, _ := b.claimDue(t, q, occ, d[0])
		dep := Dependent{Job: down, Occurrence: depID(down, occ), ScheduledAt: d[0], Needed: 1, Met: true}
		retry := Completion{Claim: cl, Retry: true, Delay: time.Millisecond, Dependents: []Dependent{dep},
			Record: &Record{Occurrence: occ, Job: up, Status: StatusRetrying}}
		if ok := mustComplete(t, q, retry); !ok[0] {
			t.Fatal("retry refused")
		}
		if got := b.outbox(t, q, up); len(got) != 0 {
			t.Fatalf("a retry wrote %v to the outbox", got)
		}
		cl, _, _ = b.claimDue(t, q, occ, b.now(t).Add(time.Millisecond))
		done := Completion{Claim: cl, Dependents: []Dependent{dep}, Record: &Record{Occurrence: occ, Job: up, Status: StatusSucceeded}}
		for range 2 {
			if ok := mustComplete(t, q, done); !ok[0] {
				t.Fatal("completion refused")
			}
		}
		box := b.outbox(t, q, up)
		if len(box) != 1 {
			t.Fatalf("outbox %v, want one entry", box)
		}

		n, in := mustDrain(t, q)
		if n != 1 || !slices.Equal(in, []int{ShardOf(down)}) {
			t.Fatalf("drain added %d in shards %v, want 1 in %d", n, in, ShardOf(down))
		}
		if !b.agendaHas(t, q, down, dep.Occurrence) {
			t.Fatalf("%s is not on its agenda", dep.Occurrence)
		}
		if got := b.outbox(t, q, up); len(got) != 0 {
			t.Fatalf("outbox %v after the drain", got)
		}
		if ups, err := q.Upstream(t.Context(), dep.Occurrence); err != nil || !slices.Equal(ups, []string{occ}) {
			t.Fatalf("Upstream = %v, %v, want [%s]", ups, err, occ)
		}

		// A node that died between carrying and deleting leaves the entry: carried again, it
		// adds nothing, even after the downstream ran and left the agenda.
		if err := b.rdb.ZRem(t.Context(), q.keys(ShardOf(down)).agenda(), dep.Occurrence).Err(); err != nil {
			t.Fatal(err)
		}
		for f, v := range box {
			if err := b.rdb.HSet(t.Context(), q.keys(ShardOf(up)).deps(), f, v).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if n, _ := mustDrain(t, q); n != 0 || b.agendaHas(t, q, down, dep.Occurrence) {
			t.Fatalf("a repeated drain added %d", n)
		}
		if n, _ := mustDrain(t, q); n != 0 {
			t.Fatalf("an empty drain added %d", n)
		}
	})
}

// TestDependentFanIn: a job after two others is added once both ended as required for the
// same instant, and recorded skipped, naming both, when one did not.
func TestDependentFanIn(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{Node: "n1"})
		const a = "fan-a"
		e := otherShard("fan-e", a)
		down := otherShard("fan-d", a, e)
		d := b.dues(t, 2, b.lease/3)
		mustExpand(t, q, expansion(a, d...), expansion(e, d...))
		dep := func(due time.Time, up string, met bool) Dependent {
			return Dependent{Job: down, Occurrence: depID(down, occID(up, due)), ScheduledAt: due, Needed: 2, Met: met}
		}

		aocc := b.ended(t, q, a, d[0], StatusSucceeded, dep(d[0], a, true))
		if n, _ := mustDrain(t, q); n != 0 {
			t.Fatalf("one parent of two added %d", n)
		}
		want := depID(down, aocc)
		if b.agendaHas(t, q, down, want) {
			t.Fatalf("%s added after one parent of two", want)
		}
		eocc := b.ended(t, q, e, d[0], StatusSucceeded, dep(d[0], e, true))
		if n, _ := mustDrain(t, q); n != 1 || !b.agendaHas(t, q, down, want) {
			t.Fatalf("both parents ended: added %d, want %s on the agenda", n, want)
		}
		if ups, err := q.Upstream(t.Context(), want); err != nil || !slices.Equal(ups, []string{aocc, eocc}) {
			t.Fatalf("Upstream = %v, %v", ups, err)
		}

		// The next instant: a fails, so the downstream is skipped, once both have ended.
		a1 := b.ended(t, q, a, d[1], StatusFailed, dep(d[1], a, false))
		if n, _ := mustDrain(t, q); n != 0 || len(b.history(t, q, down)) != 0 {
			t.Fatalf("decided before every parent ended: added %d, history %v", n, b.history(t, q, down))
		}
		e1 := b.ended(t, q, e, d[1], StatusSucceeded, dep(d[1], e, true))
		if n, _ := mustDrain(t, q); n != 0 {
			t.Fatalf("a parent failed, but %d added", n)
		}
		h := b.history(t, q, down)
		if len(h) != 1 || h[0].Status != StatusSkipped || h[0].Occurrence != depID(down, a1) ||
			!slices.Equal(h[0].Upstream, []string{a1, e1}) || !strings.Contains(h[0].Error, a1+" failed") ||
			!h[0].ScheduledAt.Equal(d[1]) {
			t.Fatalf("history %+v, want one skipped record naming %s failed", h, a1)
		}
		if b.agendaHas(t, q, down, depID(down, a1)) {
			t.Fatal("the skipped occurrence is on the agenda")
		}
	})
}

// TestDependentOnCluster: the outbox and the downstream's join live in different slots of a
// real Redis Cluster; the drain carries the end across them.
func TestDependentOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	rdb := c.Client(t)
	q := New(rdb, Config{Namespace: namespace(t), CallTimeout: 5 * time.Second, Lease: 5 * time.Second, Node: "n1",
		SettleAfter: 24 * time.Hour, Away: 24 * time.Hour})
	const up = "cl-up"
	down := otherShard("cl-down", up)
	due := time.Now().Add(300 * time.Millisecond).Truncate(time.Millisecond)
	if _, err := q.Expand(t.Context(), []Expansion{expansion(up, due)}); err != nil {
		t.Fatal(err)
	}
	cl := claimOn(t, q, ShardOf(up))
	dep := Dependent{Job: down, Occurrence: depID(down, cl.Occurrence), ScheduledAt: due, Needed: 1, Met: true}
	res, err := q.Complete(t.Context(), []Completion{{Claim: cl, Dependents: []Dependent{dep},
		Record: &Record{Occurrence: cl.Occurrence, Job: up, Status: StatusSucceeded}}})
	if err != nil || !res.Accepted[0] {
		t.Fatalf("Complete: %v, %+v", err, res)
	}
	n, in := mustDrain(t, q)
	if n != 1 || !slices.Equal(in, []int{ShardOf(down)}) {
		t.Fatalf("drain added %d in %v", n, in)
	}
	got := claimOn(t, q, ShardOf(down))
	if got.Occurrence != dep.Occurrence {
		t.Fatalf("claimed %s, want %s", got.Occurrence, dep.Occurrence)
	}
	if n, _ := mustDrain(t, q); n != 0 {
		t.Fatalf("a second drain added %d", n)
	}
}

// claimOn claims the first occurrence that falls due in shard, on Redis' real clock.
func claimOn(t *testing.T, q *Queue, shard int) Claim {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := q.Claim(t.Context(), []int{shard}, 10, 0, time.Time{}, nil)
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		if len(c.Claims) > 0 {
			return c.Claims[0]
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	t.Fatalf("nothing claimable in shard %d", shard)
	return Claim{}
}
