package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultPriority is the priority of a job that sets none. Priorities run from
// MinPriority to MaxPriority; a higher one is claimed first.
const (
	DefaultPriority = 50
	MinPriority     = 0
	MaxPriority     = 100
)

// PriorityAging is how long a due occurrence waits for each point its effective priority
// gains: its job's priority plus one per PriorityAging past the instant it became
// claimable, capped at MaxPriority. An occurrence that ranks at MaxPriority is ordered by
// age alone, so an occurrence of priority p waits at most (MaxPriority-p) × PriorityAging
// behind occurrences that became due after it, however many keep coming.
const PriorityAging = time.Second

// PrioritySettle is how long after a ranked claim of a job of some priority a claim of a
// lower one may start at the earliest (lua/claim.lua): runs claimed together, or by two
// nodes a moment apart, start in no set order, and the settle puts the higher first. It
// costs the first lower-priority runs after a backlog of higher ones this much lateness.
const PrioritySettle = 100 * time.Millisecond

// settle is the highest priority that recent ranked claims took, over the shards a ranking
// round read, and what was left of its settle then; the zero value for none. What is left,
// not when it ends: the shards of a Cluster each have their own clock.
type settle struct {
	prio   int
	remain time.Duration
	ok     bool
}

// rankScan bounds the due entries a claim reads to rank them (lua/claim.lua), and rank.lua
// alike: priority orders the oldest rankScan due entries of a shard.
const rankScan = 10000

// priorities is the claim script's ARGV[20] for shard: the aging step, the floor (-1 for
// none), the settle and the top it read, and the jobs of the shard whose priority is not the
// default. It is empty when nothing is to be ranked, which keeps a claim without priorities
// as it always was.
func priorities(prios map[string]int, shard, floor int, top settle) string {
	if len(prios) == 0 && floor < 0 {
		return ""
	}
	var b strings.Builder
	topPrio, topRemain := -1, int64(0)
	if top.ok {
		topPrio, topRemain = top.prio, top.remain.Milliseconds()
	}
	fmt.Fprintf(&b, "%d %d %d %d %d ", PriorityAging.Milliseconds(), floor, PrioritySettle.Milliseconds(), topPrio, topRemain)
	named := floor >= 0
	for j, n := range prios {
		if n != DefaultPriority && ShardOf(j) == shard {
			fmt.Fprintf(&b, "%s %d ", j, n)
			named = true
		}
	}
	if !named {
		return ""
	}
	return b.String()
}

// rankShards decides, for a claim of up to max from each of shards (and up to p.Total in
// all, if set), which occurrences the call takes when more is due than it may take: those
// of the highest effective priority across the shards, not per shard, or a shard whose
// high-priority occurrences ran out would hand out low ones while another still holds high
// ones. It counts each shard's due entries by effective priority (lua/rank.lua, one round
// trip, and only when the caller has priorities), then returns how many each shard's call
// may take, the least effective priority to take (the floor, -1 for any), and the settle
// the shards' recent ranked claims set (lua/claim.lua). A nil quota means max from each
// shard. The entries the caller passes over (the jobs of yield and p.Ineligible, and parts
// pinned to other nodes) are not counted: it takes none of them. If the count fails (the
// claim calls then meet and report the same fault), the first shards take max each up to
// p.Total, ranked each on its own.
func (q *Queue) rankShards(ctx context.Context, shards []int, max int, lead time.Duration, yield []string, p Placement) (quota map[int]int, floor int, top settle) {
	if len(p.Priorities) == 0 || max <= 0 || (len(shards) < 2 && p.Total <= 0) {
		return nil, -1, top
	}
	total := max * len(shards)
	if p.Total > 0 {
		total = min(total, p.Total)
	}
	fallback := func() (map[int]int, int, settle) {
		if p.Total <= 0 {
			return nil, -1, settle{}
		}
		quota, room := make(map[int]int, len(shards)), total
		for _, s := range shards {
			quota[s] = min(max, room)
			room -= quota[s]
		}
		return quota, -1, settle{}
	}
	calls := make([]call, len(shards))
	for i, s := range shards {
		k := q.keys(s)
		calls[i] = call{script: q.rank, keys: []string{k.agenda(), k.top(), k.fan(), k.calls()},
			args: []any{lead.Milliseconds(), priorities(p.Priorities, s, 0, settle{}), rankScan, q.cfg.Node, q.cfg.Lease.Milliseconds(),
				strings.Join(p.Ineligible[s], " "), strings.Join(jobsIn(yield, s), " ")}, shard: s}
	}
	res, errs, err := q.evalEach(ctx, calls)
	if err != nil {
		return fallback()
	}
	// count[s][eff] is how many of shard s's due entries have effective priority eff.
	count := make(map[int][]int, len(shards))
	all := make([]int, MaxPriority+1)
	for i, r := range res {
		if errs[i] != nil {
			return fallback()
		}
		xs, ok := r.([]any)
		if !ok || len(xs) < 2 {
			return fallback()
		}
		tp, ok1 := xs[0].(int64)
		tms, ok2 := xs[1].(int64)
		if !ok1 || !ok2 {
			return fallback()
		}
		if tp >= 0 && (!top.ok || int(tp) > top.prio) {
			top = settle{prio: int(tp), remain: time.Duration(tms) * time.Millisecond, ok: true}
		}
		c := make([]int, MaxPriority+1)
		for k := 2; k+1 < len(xs); k += 2 {
			e, ok1 := xs[k].(int64)
			n, ok2 := xs[k+1].(int64)
			if !ok1 || !ok2 || e < MinPriority || e > MaxPriority {
				return fallback()
			}
			c[e] += int(n)
			all[e] += int(n)
		}
		count[shards[i]] = c
	}
	floor, above := -1, 0
	for e := MaxPriority; e >= MinPriority; e-- {
		if above+all[e] >= total {
			floor = e
			break
		}
		above += all[e]
	}
	quota = make(map[int]int, len(shards))
	if floor >= 0 && above > 0 {
		// Higher ones are taken now: the effective priority where the room runs out waits
		// for the caller's next call, which comes at once, rather than starting in the same
		// breath as them (runs claimed together start together, in any order).
		for _, s := range shards {
			for e := floor + 1; e <= MaxPriority; e++ {
				quota[s] += count[s][e]
			}
			quota[s] = min(quota[s], max)
		}
		return quota, floor + 1, top
	}
	// Each shard takes all it holds above the floor (with no floor: all it holds, which
	// fits); the room left goes to the entries at the floor, shard by shard, each shard
	// at most max.
	room := total - above
	for _, s := range slices.Sorted(slices.Values(shards)) {
		for e := floor + 1; e <= MaxPriority; e++ {
			if e >= 0 {
				quota[s] += count[s][e]
			}
		}
		if floor >= 0 {
			at := min(room, count[s][floor])
			quota[s] += at
			room -= at
		}
		quota[s] = min(quota[s], max)
	}
	return quota, floor, top
}

// jobsIn is the part of jobs in shard.
func jobsIn(jobs []string, shard int) []string {
	var out []string
	for _, j := range jobs {
		if ShardOf(j) == shard {
			out = append(out, j)
		}
	}
	return out
}
