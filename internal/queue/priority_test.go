package queue

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

// TestPriority: when more is due than a call may take, the highest priority is claimed
// first and, within a priority, the oldest; an occurrence overdue long enough outranks a
// fresh one of a higher priority (aging); and across the shards of one call, the highest
// priorities of all of them are taken, not the highest of each.
func TestPriority(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		// Each case has a namespace of its own: what one leaves due would rank in the next.
		var q *Queue
		fresh := func(name string) { q = b.queue(Config{Node: "a", Namespace: b.ns + "." + name}) }
		claim := func(shards []int, max int, p Placement) []string {
			t.Helper()
			res, err := q.ClaimPlaced(t.Context(), shards, max, 1200*time.Millisecond, time.Time{}, nil, p)
			if err != nil {
				t.Fatalf("Claim: %v", err)
			}
			var out []string
			for _, c := range res.Claims {
				out = append(out, c.Occurrence)
			}
			return out
		}
		// dues are n instants a millisecond apart from at.
		dues := func(at time.Time, n int) []time.Time {
			var ds []time.Time
			for i := range n {
				ds = append(ds, at.Add(time.Duration(i)*time.Millisecond))
			}
			return ds
		}
		ids := func(job string, ds []time.Time) []string {
			var out []string
			for _, d := range ds {
				out = append(out, occID(job, d))
			}
			return out
		}
		sorted := func(xs []string) []string {
			xs = append([]string(nil), xs...)
			sort.Strings(xs)
			return xs
		}

		t.Run("priority then age", func(t *testing.T) {
			fresh("order")
			jobs := sameShard("order", 2)
			hi, lo := jobs[0], jobs[1]
			shard := ShardOf(hi)
			at := b.now(t).Add(time.Second)
			// The low-priority occurrences are the older ones: priority comes before age.
			loDues, hiDues := dues(at, 20), dues(at.Add(20*time.Millisecond), 20)
			mustExpand(t, q, expansion(lo, loDues...), expansion(hi, hiDues...))
			p := Placement{Priorities: map[string]int{hi: 90, lo: 10}}
			for i, want := range [][]string{ids(hi, hiDues[:10]), ids(hi, hiDues[10:]), ids(lo, loDues[:10])} {
				if diff := cmp.Diff(want, claim([]int{shard}, 10, p)); diff != "" {
					t.Errorf("call %d (-want +got):\n%s", i+1, diff)
				}
			}
		})

		t.Run("aging", func(t *testing.T) {
			fresh("aging")
			jobs := sameShard("aging", 2)
			hi, lo := jobs[0], jobs[1]
			shard := ShardOf(hi)
			at := b.now(t).Add(time.Second)
			hiDues := dues(at, 5)
			loDues := dues(at.Add(10*time.Millisecond), 2)
			mustExpand(t, q, expansion(hi, hiDues...), expansion(lo, loDues...))
			// Overdue by more and by less than the bound for priority 10 under 90: the
			// priorities are 80 points apart.
			now := b.now(t)
			bound := 80 * PriorityAging
			for i, back := range []time.Duration{bound + 2*time.Second, bound - 2*time.Second} {
				score := now.Add(-back).UnixMilli()
				if err := b.rdb.ZAddXX(t.Context(), q.keys(shard).agenda(), redis.Z{Score: float64(score), Member: occID(lo, loDues[i])}).Err(); err != nil {
					t.Fatal(err)
				}
			}
			p := Placement{Priorities: map[string]int{hi: 90, lo: 10}}
			if diff := cmp.Diff([]string{occID(lo, loDues[0])}, claim([]int{shard}, 1, p)); diff != "" {
				t.Errorf("a low priority overdue past its bound (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{occID(hi, hiDues[0])}, claim([]int{shard}, 1, p)); diff != "" {
				t.Errorf("a low priority overdue within its bound (-want +got):\n%s", diff)
			}
		})

		t.Run("backlog by priority", func(t *testing.T) {
			fresh("stats")
			jobs := sameShard("backlog", 3)
			at := b.now(t).Add(50 * time.Millisecond)
			mustExpand(t, q, expansion(jobs[0], dues(at, 3)...), expansion(jobs[1], dues(at, 2)...), expansion(jobs[2], at))
			b.clockTo(t, at.Add(10*time.Millisecond))
			st, err := q.Stats(t.Context(), map[string]int{jobs[0]: 90, jobs[1]: 10})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[int]int64{90: 3, 10: 2, DefaultPriority: 1}, st.DueByPriority); diff != "" {
				t.Errorf("backlog by priority (-want +got):\n%s", diff)
			}
		})

		t.Run("across shards", func(t *testing.T) {
			fresh("across")
			hi := sameShard("across-hi", 1)[0]
			var lo string
			for i := 0; lo == ""; i++ {
				if j := fmt.Sprintf("across-lo-%d", i); ShardOf(j) != ShardOf(hi) {
					lo = j
				}
			}
			at := b.now(t).Add(time.Second)
			loDues, hiDues := dues(at, 5), dues(at.Add(10*time.Millisecond), 8)
			mustExpand(t, q, expansion(lo, loDues...), expansion(hi, hiDues...))
			shards := []int{ShardOf(hi), ShardOf(lo)}
			// Three from each shard would take three low ones while five high ones wait.
			p := Placement{Priorities: map[string]int{hi: 90, lo: 10}}
			if diff := cmp.Diff(ids(hi, hiDues[:3]), sorted(claim(shards, 3, p))); diff != "" {
				t.Errorf("three from each shard (-want +got):\n%s", diff)
			}
			// Six in all, shared by rank: the high ones first; where the room would take
			// both, the high ones now and the low ones at the next call, not together.
			p.Total = 6
			for i, want := range [][]string{ids(hi, hiDues[3:]), ids(lo, loDues)} {
				if diff := cmp.Diff(want, sorted(claim(shards, 64, p))); diff != "" {
					t.Errorf("six in all, call %d (-want +got):\n%s", i+1, diff)
				}
			}
		})

		t.Run("settle", func(t *testing.T) {
			fresh("settle")
			hi := sameShard("settle-hi", 1)[0]
			var lo string
			for i := 0; lo == ""; i++ {
				if j := fmt.Sprintf("settle-lo-%d", i); ShardOf(j) != ShardOf(hi) {
					lo = j
				}
			}
			other := b.queue(Config{Node: "b", Namespace: b.ns + ".settle"})
			at := b.now(t).Add(50 * time.Millisecond)
			loDues, hiDues := dues(at, 4), dues(at, 3)
			mustExpand(t, q, expansion(lo, loDues...), expansion(hi, hiDues...))
			b.clockTo(t, at.Add(10*time.Millisecond))
			shards := []int{ShardOf(hi), ShardOf(lo)}
			p := Placement{Priorities: map[string]int{hi: 90, lo: 10}, Total: 3}
			take := func(q *Queue) Claimed {
				t.Helper()
				res, err := q.ClaimPlaced(t.Context(), shards, 64, 0, time.Time{}, nil, p)
				if err != nil {
					t.Fatalf("Claim: %v", err)
				}
				return res
			}
			hiDue := map[string]time.Time{}
			for _, d := range hiDues {
				hiDue[occID(hi, d)] = d
			}
			first := take(q)
			for _, c := range first.Claims {
				if due, ok := hiDue[c.Occurrence]; !ok || !c.NotBefore.Equal(due) {
					t.Errorf("first call: %s, not before %v; want the high ones, at their due time", c.Occurrence, c.NotBefore)
				}
			}
			// Another node takes the low ones: they start a settle after the high ones'
			// claim, which the first call's reply dates no earlier than.
			second := take(other)
			if len(second.Claims) != 3 {
				t.Fatalf("second call claimed %d, want 3 low ones", len(second.Claims))
			}
			for _, c := range second.Claims {
				if c.Job != lo || c.NotBefore.Before(first.Now.Add(PrioritySettle-2*time.Millisecond)) {
					t.Errorf("second call: %s, not before %v; want a low one, not before %v", c.Occurrence, c.NotBefore, first.Now.Add(PrioritySettle))
				}
			}

			// A higher priority that the call does not run (paused) holds nothing back.
			fresh("settle-paused")
			pj := sameShard("settle-paused", 2)
			phi, plo := pj[0], pj[1]
			at = b.now(t).Add(50 * time.Millisecond)
			loPaused := dues(at, 2)
			mustExpand(t, q, expansion(phi, at), expansion(plo, loPaused...))
			if err := q.Pause(t.Context(), phi, Pause{By: "test"}); err != nil {
				t.Fatal(err)
			}
			b.clockTo(t, at.Add(10*time.Millisecond))
			res, err := q.ClaimPlaced(t.Context(), []int{ShardOf(phi)}, 2, 0, time.Time{}, nil, Placement{Priorities: map[string]int{phi: 90, plo: 10}, Total: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range res.Claims {
				if c.Job != plo || c.NotBefore.After(loPaused[1]) {
					t.Errorf("%s: not before %v; want a low one at its due time, the paused high one not run", c.Occurrence, c.NotBefore)
				}
			}

			// A backlog of one priority, of different ages, is not held back.
			fresh("settle-one")
			one := sameShard("settle-one", 1)[0]
			at = b.now(t).Add(50 * time.Millisecond)
			oneDues := dues(at, 6)
			mustExpand(t, q, expansion(one, oneDues...))
			b.clockTo(t, at.Add(1100*time.Millisecond))
			dueOf := map[string]time.Time{}
			for _, d := range oneDues {
				dueOf[occID(one, d)] = d
			}
			res, err = q.ClaimPlaced(t.Context(), []int{ShardOf(one)}, 3, 0, time.Time{}, nil, Placement{Priorities: map[string]int{one: 10, "x": 90}, Total: 3})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range res.Claims {
				if due := dueOf[c.Occurrence]; !c.NotBefore.Equal(due) {
					t.Errorf("%s of a one-priority backlog: not before %v, want its due time", c.Occurrence, c.NotBefore)
				}
			}
		})
	})
}
