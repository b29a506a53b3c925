package queue

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/stats.lua
var statsSrc string

// Stats is the fleet's state as Redis holds it, for monitoring: whichever node reads it, it
// is the same.
type Stats struct {
	// Now is Redis' clock when the agenda was read.
	Now time.Time
	// Agenda counts the occurrences in the agenda, over every shard: planned, held by a node
	// or waiting for a retry.
	Agenda int64
	// Due counts those that are due and held by no node: the backlog. Claims ahead of the
	// due time keep it near zero in a healthy fleet.
	Due int64
	// OldestDue is how long the earliest of them has been due, by Redis' clock (zero when
	// none is due).
	OldestDue time.Duration
	// DueByPriority counts Due by the priority of each occurrence's job (the priorities
	// given to Stats), over the oldest due entries of each shard (as many as a claim ranks);
	// nil when Stats was given none.
	DueByPriority map[int]int64
	// Unplaced counts, by job, the occurrences that wait for a live node that may run them
	// (their job's constraints match no live node); nil when none waits.
	Unplaced map[string]int64
	// Nodes are the fleet's nodes, as Nodes returns them.
	Nodes []NodeSeen
}

// Stats reads the fleet's state in one round trip: each shard's agenda (by a read-only
// script, so that what is due is decided by Redis' clock) and the list of nodes. With
// prios (the priority of each job whose priority is not DefaultPriority; empty for none
// such) it also counts the backlog by priority; with nil it does not.
func (q *Queue) Stats(ctx context.Context, prios map[string]int) (Stats, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	k := namespaceKeys(q.cfg.Namespace)
	shards := make([]*redis.Cmd, Shards)
	var nodes, seen *redis.MapStringStringCmd
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for s := range shards {
			// EVAL, not EVALSHA: the script is short and asked for once per scrape, so its
			// source costs less than a NOSCRIPT round trip after Redis lost its cache.
			k := q.keys(s)
			args := []any{k.unplacedPrefix()}
			if prios != nil {
				args = append(args, statsPriorities(prios, s))
			}
			shards[s] = q.stats.Eval(ctx, p, []string{k.agenda(), k.unplaced()}, args...)
		}
		nodes = p.HGetAll(ctx, k.nodes())
		seen = p.HGetAll(ctx, k.seen())
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", q.callError(err))
	}
	var st Stats
	if prios != nil {
		st.DueByPriority = map[int]int64{}
	}
	var oldest time.Time // the earliest head of the shards that have something due
	for s, c := range shards {
		vals, err := c.Slice()
		if err != nil || len(vals) < 4 {
			return Stats{}, fmt.Errorf("queue: stats: shard %d: unexpected reply %v (%v)", s, vals, err)
		}
		now, ok1 := vals[0].(int64)
		size, ok2 := vals[1].(int64)
		due, ok3 := vals[2].(int64)
		headStr, ok4 := vals[3].(string)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return Stats{}, fmt.Errorf("queue: stats: shard %d: unexpected reply %v", s, vals)
		}
		if t := time.UnixMilli(now); t.After(st.Now) {
			st.Now = t
		}
		st.Agenda += size
		st.Due += due
		if len(vals) > 4 && st.DueByPriority != nil {
			by, _ := vals[4].([]any)
			for k := 0; k+1 < len(by); k += 2 {
				p, ok1 := by[k].(int64)
				n, ok2 := by[k+1].(int64)
				if !ok1 || !ok2 {
					return Stats{}, fmt.Errorf("queue: stats: shard %d: unexpected reply %v", s, vals)
				}
				st.DueByPriority[int(p)] += n
			}
		}
		if len(vals) > 5 {
			by, _ := vals[5].([]any)
			for k := 0; k+1 < len(by); k += 2 {
				job, ok1 := by[k].(string)
				n, ok2 := by[k+1].(int64)
				if !ok1 || !ok2 {
					return Stats{}, fmt.Errorf("queue: stats: shard %d: unexpected reply %v", s, vals)
				}
				if st.Unplaced == nil {
					st.Unplaced = map[string]int64{}
				}
				st.Unplaced[job] += n
			}
		}
		if due == 0 {
			continue
		}
		head, err := strconv.ParseFloat(headStr, 64)
		if err != nil {
			return Stats{}, fmt.Errorf("queue: stats: shard %d: malformed head %q", s, headStr)
		}
		if h := time.UnixMilli(int64(head)); oldest.IsZero() || h.Before(oldest) {
			oldest = h
		}
	}
	if !oldest.IsZero() {
		st.OldestDue = max(st.Now.Sub(oldest), 0)
	}
	for name, raw := range nodes.Val() {
		n, err := decodeNode(raw, seen.Val()[name], st.Now)
		if err != nil {
			return Stats{}, fmt.Errorf("queue: stats: node %s: %w", name, err)
		}
		st.Nodes = append(st.Nodes, n)
	}
	return st, nil
}

// statsPriorities is the stats script's ARGV[1] for shard.
func statsPriorities(prios map[string]int, shard int) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(rankScan))
	for j, n := range prios {
		if n != DefaultPriority && ShardOf(j) == shard {
			fmt.Fprintf(&b, " %s %d", j, n)
		}
	}
	return b.String()
}
