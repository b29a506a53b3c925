package queue

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// burst adds one occurrence of each of n jobs in one shard, all due at one instant a second
// ahead (claimed with a lead past it, so the test never waits), and returns the shard. The
// lead stays below the short lease of a claim made ahead, as the engine's does, so what
// was claimed no longer counts as due.
func burst(t *testing.T, q *Queue, b *backend, prefix string, n int) (shard int, due time.Time) {
	t.Helper()
	due = b.now(t).Add(time.Second)
	jobs := sameShard(prefix, n)
	exps := make([]Expansion, n)
	for i, j := range jobs {
		exps[i] = expansion(j, due)
	}
	mustExpand(t, q, exps...)
	return ShardOf(jobs[0]), due
}

// TestFairShare: with three live nodes, a burst is shared: the first node to call takes a
// third and yields (Shared), the second half of the rest, the last what is left. A node
// alone takes the burst in at most three calls; a busier node takes less.
func TestFairShare(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		// Each case has a namespace of its own: the nodes' calls of one would count in the next.
		var nodes map[string]*Queue
		fleet := func(ns string) {
			nodes = map[string]*Queue{}
			for _, n := range []string{"a", "b", "c"} {
				nodes[n] = b.queue(Config{Node: n, Namespace: b.ns + "." + ns})
			}
		}
		place := Placement{Nodes: 3, Free: 1, Window: 10 * time.Second}
		claim := func(node string, shard int, p Placement) (int, bool) {
			t.Helper()
			c, err := nodes[node].ClaimPlaced(t.Context(), []int{shard}, 64, 1200*time.Millisecond, time.Time{}, nil, p)
			if err != nil {
				t.Fatalf("Claim: %v", err)
			}
			return len(c.Claims), c.Shared[shard]
		}
		type call struct {
			node   string
			free   float64
			n      int
			shared bool
		}
		for name, calls := range map[string][]call{
			"three nodes":  {{"a", 1, 20, true}, {"b", 1, 20, true}, {"c", 1, 20, false}, {"a", 1, 0, false}},
			"one alone":    {{"a", 1, 20, true}, {"a", 1, 20, true}, {"a", 1, 20, false}},
			"a busy node":  {{"a", 0.5, 10, true}, {"b", 1, 25, true}, {"c", 1, 25, false}},
			"a full share": {{"a", 0, 0, true}, {"b", 1, 30, true}, {"c", 1, 30, false}},
		} {
			t.Run(name, func(t *testing.T) {
				fleet(strings.ReplaceAll(name, " ", "-"))
				shard, _ := burst(t, nodes["a"], b, "fair", 60)
				for i, c := range calls {
					p := place
					p.Free = c.free
					if n, shared := claim(c.node, shard, p); n != c.n || shared != c.shared {
						t.Errorf("call %d by %s: claimed %d, shared %v; want %d, %v", i+1, c.node, n, shared, c.n, c.shared)
					}
				}
			})
		}
		// Without a placement a call takes what is due, up to its max.
		fleet("unshared")
		shard, _ := burst(t, nodes["a"], b, "fair", 60)
		if n, shared := claim("a", shard, Placement{}); n != 60 || shared {
			t.Errorf("claim without a placement: %d, shared %v; want 60, false", n, shared)
		}
	})
}

// TestMaxConcurrent: a job capped at two runs at once gets two claims across the nodes
// however many of its occurrences are due; the others wait, keep their order, and do not
// hold up another job's occurrence behind them. Room comes back when a run completes, or
// when a holder's lease is gone without a completion.
func TestMaxConcurrent(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		a, c := b.queue(Config{Node: "a"}), b.queue(Config{Node: "c"})
		jobs := sameShard("cap", 2)
		capped, other := jobs[0], jobs[1]
		shard := ShardOf(capped)
		due := b.now(t).Add(time.Second)
		var dues []time.Time
		for i := range 5 {
			dues = append(dues, due.Add(time.Duration(i)*time.Millisecond))
		}
		mustExpand(t, a, expansion(capped, dues...), expansion(other, due.Add(10*time.Millisecond)))
		place := Placement{Limits: map[string]int{capped: 2}}
		claim := func(q *Queue) []Claim {
			t.Helper()
			res, err := q.ClaimPlaced(t.Context(), []int{shard}, 64, 1200*time.Millisecond, time.Time{}, nil, place)
			if err != nil {
				t.Fatalf("Claim: %v", err)
			}
			return res.Claims
		}
		occs := func(cs []Claim) []string {
			var out []string
			for _, c := range cs {
				out = append(out, c.Occurrence)
			}
			return out
		}
		first := claim(a)
		want := []string{occID(capped, dues[0]), occID(capped, dues[1]), occID(other, due.Add(10*time.Millisecond))}
		if diff := cmp.Diff(want, occs(first)); diff != "" {
			t.Fatalf("first claim (-want +got):\n%s", diff)
		}
		if got := claim(c); len(got) != 0 {
			t.Fatalf("another node claimed %v past the cap", occs(got))
		}
		// A completion makes room for the oldest waiting one.
		if ok := mustComplete(t, a, Completion{Claim: first[0]}); !ok[0] {
			t.Fatal("completion refused")
		}
		if diff := cmp.Diff([]string{occID(capped, dues[2])}, occs(claim(c))); diff != "" {
			t.Errorf("claim after a completion (-want +got):\n%s", diff)
		}
		if got := claim(a); len(got) != 0 {
			t.Fatalf("claimed %v past the cap after one completion", occs(got))
		}
		// A holder whose lease is gone without a completion counts no more.
		if err := b.rdb.Del(t.Context(), a.keys(shard).lockPrefix()+first[1].Occurrence).Err(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{occID(capped, dues[3])}, occs(claim(a))); diff != "" {
			t.Errorf("claim after a lease was lost (-want +got):\n%s", diff)
		}
		// Without the cap, what waits is let back in.
		place = Placement{}
		if diff := cmp.Diff([]string{occID(capped, dues[4])}, occs(claim(c))); diff != "" {
			t.Errorf("claim without the cap (-want +got):\n%s", diff)
		}
	})
}

// TestTargeting: a node passes over the occurrences of the jobs it may not run, however many
// lie ahead of those it may; the due occurrences of a job no live node may run wait apart,
// recorded as unplaced once, and run when a node that may claims, or are recorded missed
// past the job's catch-up window by any node.
func TestTargeting(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{Node: "us-1"})
		jobs := sameShard("tgt", 3)
		eu, any, late := jobs[0], jobs[1], jobs[2]
		shard := ShardOf(eu)
		due := b.now(t).Add(time.Second)
		policy := Policy{Overlap: OverlapAllow, Catchup: CatchupAll, CatchupWindow: 2 * time.Second}
		var euDue []time.Time
		for i := range 600 {
			euDue = append(euDue, due.Add(time.Duration(i)*time.Millisecond))
		}
		exps := []Expansion{expansion(eu, euDue...), expansion(any, due.Add(650*time.Millisecond)), expansion(late, due)}
		for i := range exps {
			exps[i].Policy = policy
		}
		mustExpand(t, q, exps...)
		b.clockTo(t, due.Add(700*time.Millisecond))
		claim := func(p Placement) Claimed {
			t.Helper()
			c, err := q.ClaimPlaced(t.Context(), []int{shard}, 10, 0, time.Time{}, nil, p)
			if err != nil {
				t.Fatalf("Claim: %v", err)
			}
			return c
		}
		// 601 entries of jobs it may not run lie ahead of the one it may: it takes that one.
		us := Placement{Ineligible: ByShard([]string{eu, late})}
		c := claim(us)
		if len(c.Claims) != 1 || c.Claims[0].Job != any || len(c.Decided) != 0 {
			t.Fatalf("a node that may not run %s claimed %+v, decided %+v; want the one occurrence of %s", eu, c.Claims, c.Decided, any)
		}
		if h, ok := c.Heads[shard]; ok && !h.After(b.now(t)) {
			t.Errorf("head %v is due: the node would ask again at once for what it may not run", h)
		}

		// Nobody may run them: they wait apart, each recorded once.
		us.Unplaced = map[string]string{eu: "region = eu", late: "region = eu"}
		c = claim(us)
		if len(c.Claims) != 0 || len(c.Decided) != 601 {
			t.Fatalf("with no live node for %s: claimed %d, decided %d; want 0 and 601", eu, len(c.Claims), len(c.Decided))
		}
		for _, d := range c.Decided {
			if d.Status != StatusUnplaced || !strings.Contains(d.Reason, "region = eu") {
				t.Fatalf("decided %+v, want unplaced naming the constraint", d)
			}
		}
		if c = claim(us); len(c.Decided) != 0 {
			t.Errorf("a second call decided %d again", len(c.Decided))
		}
		recs, err := q.History(t.Context(), eu, 1000)
		if err != nil || len(recs) != q.cfg.HistoryLimit {
			t.Fatalf("history of %s: %d records (%v), want as many as it keeps, %d", eu, len(recs), err, q.cfg.HistoryLimit)
		}
		for _, r := range recs {
			if r.Status != StatusUnplaced || r.Attempt != 0 {
				t.Fatalf("history of %s holds %+v, want unplaced records", eu, r)
			}
		}
		if st, err := q.Stats(t.Context(), nil); err != nil || st.Unplaced[eu] != 600 || st.Unplaced[late] != 1 {
			t.Errorf("stats count unplaced %v (%v), want 600 of %s and 1 of %s", st.Unplaced, err, eu, late)
		}
		if n := b.rdb.ZCard(t.Context(), q.keys(shard).agenda()).Val(); n > 1 {
			t.Errorf("the agenda holds %d entries; the unplaced ones should wait apart", n)
		}

		// A node that may run eu comes: it takes them, as due within the catch-up window.
		euNode := b.queue(Config{Node: "eu-1"})
		euPlace := Placement{Ineligible: ByShard([]string{late})}
		var got int
		for range 100 {
			c, err := euNode.ClaimPlaced(t.Context(), []int{shard}, 1000, 0, time.Time{}, nil, euPlace)
			if err != nil {
				t.Fatal(err)
			}
			got += len(c.Claims)
			for _, cl := range c.Claims {
				if cl.Job != eu {
					t.Fatalf("the eu node claimed %s", cl.Occurrence)
				}
			}
			if got >= 600 {
				break
			}
		}
		if got != 600 {
			t.Fatalf("the eu node claimed %d of the 600 waiting occurrences", got)
		}

		if st, err := q.Stats(t.Context(), nil); err != nil || len(st.Unplaced) != 1 || st.Unplaced[late] != 1 {
			t.Errorf("stats count unplaced %v (%v), want only the 1 of %s", st.Unplaced, err, late)
		}
		// Past its catch-up window, an occurrence nobody could run is missed, by any node.
		b.clockTo(t, due.Add(policy.CatchupWindow+10*time.Millisecond))
		c = claim(us)
		if len(c.Decided) != 1 || c.Decided[0].Status != StatusMissed || !strings.Contains(c.Decided[0].Reason, "no live node could run it (region = eu)") {
			t.Fatalf("past the window: decided %+v, want %s missed", c.Decided, late)
		}
		recs, err = q.History(t.Context(), late, 10)
		if err != nil || len(recs) != 2 || recs[0].Status != StatusMissed || recs[1].Status != StatusUnplaced {
			t.Fatalf("history of %s: %+v (%v), want unplaced then missed", late, recs, err)
		}
	})
}

// TestTargetingBounds: what a node passes over neither holds up its own work nor makes it
// ask again at once: the ranking of priorities leaves it out, a head past the entries a
// call reads is not reported due, and the parts of an occurrence that no live node may run
// wait without a record, for a node that may run them.
func TestTargetingBounds(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		t.Run("ranking leaves it out", func(t *testing.T) {
			q := b.queue(Config{Node: "us-1", Namespace: b.ns + ".rank"})
			hi := sameShard("rank-hi", 1)[0]
			var lo string
			for i := 0; lo == ""; i++ {
				if j := fmt.Sprintf("rank-lo-%d", i); ShardOf(j) != ShardOf(hi) {
					lo = j
				}
			}
			at := b.now(t).Add(50 * time.Millisecond)
			var hiDues []time.Time
			for i := range 20 {
				hiDues = append(hiDues, at.Add(time.Duration(i)*time.Millisecond))
			}
			mustExpand(t, q, expansion(hi, hiDues...), expansion(lo, at))
			b.clockTo(t, at.Add(30*time.Millisecond))
			p := Placement{Priorities: map[string]int{hi: 90, lo: 10}, Total: 10, Ineligible: ByShard([]string{hi})}
			c, err := q.ClaimPlaced(t.Context(), []int{ShardOf(hi), ShardOf(lo)}, 64, 0, time.Time{}, nil, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Claims) != 1 || c.Claims[0].Job != lo {
				t.Errorf("claimed %+v; want the one occurrence of %s, which the node may run", c.Claims, lo)
			}
		})

		t.Run("a head past the read", func(t *testing.T) {
			q := b.queue(Config{Node: "us-1", Namespace: b.ns + ".cut"})
			jobs := sameShard("cut", 6)
			at := b.now(t).Add(time.Second)
			var exps []Expansion
			for _, j := range jobs {
				var ds []time.Time
				for i := range 1700 {
					ds = append(ds, at.Add(time.Duration(i)*time.Millisecond))
				}
				exps = append(exps, expansion(j, ds...))
			}
			mustExpand(t, q, exps...)
			b.clockTo(t, at.Add(1710*time.Millisecond))
			shard := ShardOf(jobs[0])
			c, err := q.ClaimPlaced(t.Context(), []int{shard}, 64, 0, time.Time{}, nil, Placement{Ineligible: ByShard(jobs)})
			if err != nil {
				t.Fatal(err)
			}
			if h, ok := c.Heads[shard]; len(c.Claims) != 0 || ok && !h.After(b.now(t)) {
				t.Errorf("claimed %d, head %v (ok %v): 10,200 entries it passes over must not have it ask again at once", len(c.Claims), h, ok)
			}
		})

		t.Run("parts wait unrecorded", func(t *testing.T) {
			qa := b.queue(Config{Node: "a", Namespace: b.ns + ".parts"})
			qb := b.queue(Config{Node: "b", Namespace: b.ns + ".parts"})
			const job = "sharded-eu"
			d := b.dues(t, 1, b.lease/4)
			mustExpand(t, qa, expansion(job, d...))
			occ := occID(job, d[0])
			cl, _, _ := b.claimDue(t, qa, occ, d[0])
			if err := qa.FanOut(t.Context(), FanOut{Claim: cl, Parts: 2, Node: "a", ScheduledAt: d[0]}); err != nil {
				t.Fatal(err)
			}
			// a died; b may not run the job, and sees no node that may.
			shard := ShardOf(job)
			for range 3 {
				c, err := qb.ClaimPlaced(t.Context(), []int{shard}, 10, 0, time.Time{}, nil,
					Placement{Ineligible: ByShard([]string{job}), Unplaced: map[string]string{job: "region = eu"}})
				if err != nil {
					t.Fatal(err)
				}
				if len(c.Claims)+len(c.Decided) != 0 {
					t.Fatalf("b claimed %v and decided %v of parts it may not run", c.Claims, c.Decided)
				}
			}
			// A node that may run it takes both parts.
			qc := b.queue(Config{Node: "c", Namespace: b.ns + ".parts"})
			b.claimParts(t, qc, shard, partID(occ, 0, 2), partID(occ, 1, 2))
		})
	})
}

// TestUnplacedRunInTurn: occurrences that waited for a node that may run them each run when
// one comes, in their turn, under a job's default catch-up (latest) and overlap (skip)
// policies: they were not missed by a fleet that was down, they waited to be placed.
func TestUnplacedRunInTurn(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{Node: "us-1"})
		const job = "eu-turn"
		shard := ShardOf(job)
		d := b.dues(t, 3, 50*time.Millisecond)
		e := expansion(job, d...)
		e.Policy = Policy{Overlap: OverlapSkip, Catchup: CatchupLatest, CatchupWindow: time.Hour}
		mustExpand(t, q, e)
		b.clockTo(t, d[2].Add(time.Millisecond))
		c, err := q.ClaimPlaced(t.Context(), []int{shard}, 10, 0, time.Time{}, nil,
			Placement{Ineligible: ByShard([]string{job}), Unplaced: map[string]string{job: "region = eu"}})
		if err != nil || len(c.Decided) != 3 {
			t.Fatalf("unplaced %v (%v), want 3", c.Decided, err)
		}
		eu := b.queue(Config{Node: "eu-1"})
		ran := map[string]bool{}
		for range 10 {
			c := b.mustClaim(t, eu, shard, 10)
			for _, d := range c.Decided {
				t.Errorf("%s recorded %s: %s; want it run in its turn", d.Occurrence, d.Status, d.Reason)
			}
			for _, cl := range c.Claims {
				ran[cl.Occurrence] = true
				mustComplete(t, eu, Completion{Claim: cl, Record: &Record{Occurrence: cl.Occurrence, Job: job, Status: StatusSucceeded}})
			}
			if len(ran) == 3 {
				break
			}
		}
		if len(ran) != 3 {
			t.Errorf("ran %v, want all 3 waiting occurrences", ran)
		}
	})
}
