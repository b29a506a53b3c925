package queue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Expansion is the next occurrences of one job, as computed by a node from its schedule.
type Expansion struct {
	// Job is the job's name. It picks the shard (ShardOf) and the watermark that decides
	// which of Due are new.
	Job string
	// Due are the due instants, ascending, at millisecond precision. Only those after the
	// job's watermark are added (for a job never expanded before: those not before Redis'
	// now), so any number of nodes may send the same expansion.
	Due []time.Time
	// IDs are the occurrence ids of Due, index for index (cron.OccurrenceID): the name the
	// occurrence keeps on every attempt and node, in its lock, its history and the ids
	// handlers see. Expand refuses an Expansion whose IDs and Due differ in length.
	IDs []string
}

// maxArgsPerCall keeps each expansion script call small, so no single call blocks Redis long.
const maxArgsPerCall = 4096

// Expand adds the occurrences of exps to the agenda, each at most once ever (see
// lua/expand.lua), and returns every job's watermark afterwards: the due time of the newest
// occurrence ever added (absent: none yet).
func (q *Queue) Expand(ctx context.Context, exps []Expansion) (map[string]time.Time, error) {
	byShard := map[int][]Expansion{}
	for _, e := range exps {
		if len(e.Due) != len(e.IDs) {
			return nil, fmt.Errorf("queue: expand %s: %d due times but %d ids", e.Job, len(e.Due), len(e.IDs))
		}
		s := ShardOf(e.Job)
		byShard[s] = append(byShard[s], e)
	}
	var calls []call
	var jobsOf [][]string
	for shard, list := range byShard {
		k := q.keys(shard)
		var args []any
		var jobs []string
		flush := func() {
			if len(jobs) == 0 {
				return
			}
			calls = append(calls, call{q.expand, []string{k.agenda(), k.watermarks()}, append([]any{len(jobs)}, args...)})
			jobsOf = append(jobsOf, jobs)
			args, jobs = nil, nil
		}
		for _, e := range list {
			if len(args) > 0 && len(args)+2+2*len(e.Due) > maxArgsPerCall {
				flush()
			}
			args = append(args, e.Job, len(e.Due))
			for _, d := range e.Due {
				args = append(args, d.UnixMilli())
			}
			for _, id := range e.IDs {
				args = append(args, id)
			}
			jobs = append(jobs, e.Job)
		}
		flush()
	}
	res, err := q.evalAll(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("queue: expand: %w", err)
	}
	wms := make(map[string]time.Time, len(exps))
	for i, r := range res {
		vals, ok := r.([]any)
		if !ok || len(vals) != len(jobsOf[i]) {
			return nil, fmt.Errorf("queue: expand: unexpected reply %v", r)
		}
		for j, v := range vals {
			if ms, err := strconv.ParseInt(fmt.Sprint(v), 10, 64); err == nil {
				wms[jobsOf[i][j]] = time.UnixMilli(ms)
			}
		}
	}
	return wms, nil
}

// Watermarks returns the due time of the newest occurrence ever added for each job that has
// one: where a node must resume expanding after the whole fleet was down.
func (q *Queue) Watermarks(ctx context.Context, jobs []string) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	byShard := map[int][]string{}
	for _, j := range jobs {
		byShard[ShardOf(j)] = append(byShard[ShardOf(j)], j)
	}
	cmds := map[int]*redis.SliceCmd{}
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for s, js := range byShard {
			cmds[s] = p.HMGet(ctx, q.keys(s).watermarks(), js...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: watermarks: %w", replyError(err))
	}
	out := map[string]time.Time{}
	for s, c := range cmds {
		for i, v := range c.Val() {
			if str, ok := v.(string); ok {
				if ms, err := strconv.ParseInt(str, 10, 64); err == nil {
					out[byShard[s][i]] = time.UnixMilli(ms)
				}
			}
		}
	}
	return out, nil
}
