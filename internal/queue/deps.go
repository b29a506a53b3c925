package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Dependent is what a job that runs after another needs to know of one upstream run's end:
// Completion.Dependents carries it into the upstream's shard, atomically with the end.
type Dependent struct {
	// Job is the downstream job.
	Job string
	// Occurrence is the downstream occurrence (cron.DependentID), the same for every
	// upstream of its instant.
	Occurrence string
	// ScheduledAt is the downstream occurrence's instant, for a skipped record.
	ScheduledAt time.Time
	// Needed is how many upstream jobs Job runs after: its occurrence is decided once that
	// many have ended for its instant.
	Needed int
	// Met says that the upstream run ended as Job's after block requires.
	Met bool
}

// JoinTTL is how long a downstream occurrence remembers the upstream ends it was decided by:
// while it does, the ends carried again add nothing, and its run can name its upstreams.
const JoinTTL = 24 * time.Hour

// drainBatch bounds the outbox entries one drain of a shard reads.
const drainBatch = 256

// dependentLines formats deps for complete.lua's outbox: one line per dependent, which
// starts with its job (the outbox field is the upstream occurrence and that job).
func dependentLines(deps []Dependent, rec *Record) string {
	status := ""
	if rec != nil {
		status = string(rec.Status)
	}
	var b strings.Builder
	for _, d := range deps {
		met := "0"
		if d.Met {
			met = "1"
		}
		fmt.Fprintf(&b, "%s\t%s\t%d\t%s\t%s\t%d\n", d.Job, d.Occurrence, d.Needed, met, status, d.ScheduledAt.UnixMilli())
	}
	return b.String()
}

// DrainDependents carries the upstream ends waiting in the deps outboxes of shards into the
// shards of the jobs that run after them (lua/join.lua), then deletes them from the outboxes.
// An entry is deleted only after it was carried, so a node that dies in between leaves it
// for the next drain, by any node; carrying it again adds nothing. It returns how many
// downstream occurrences this call added, and the shards it added them to (worth a claim).
func (q *Queue) DrainDependents(ctx context.Context, shards []int) (added int, in []int, err error) {
	type entry struct {
		shard int    // the upstream's, whose outbox holds it
		field string // "UPOCC\tJOB"
		args  []any
	}
	var entries []entry
	for _, s := range shards {
		k := q.keys(s)
		cctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
		kv, _, err := q.rdb.HScan(cctx, k.deps(), 0, "", drainBatch).Result()
		cancel()
		if err != nil {
			return 0, nil, fmt.Errorf("queue: drain dependents of shard %d: %w", s, q.callError(err))
		}
		for i := 0; i+1 < len(kv); i += 2 {
			upocc, _, ok1 := strings.Cut(kv[i], "\t")
			f := strings.Split(strings.TrimSuffix(kv[i+1], "\n"), "\t")
			upjob, ok2 := jobOf(upocc)
			if !ok1 || !ok2 || len(f) != 6 {
				continue // not ours: left alone, as foreign keys are
			}
			entries = append(entries, entry{shard: s, field: kv[i],
				args: []any{f[1], f[0], upjob, upocc, f[2], f[3], f[4], f[5]}})
		}
	}
	if len(entries) == 0 {
		return 0, nil, nil
	}
	idx := map[int][]int{}
	for i, e := range entries {
		ds := ShardOf(e.args[1].(string))
		idx[ds] = append(idx[ds], i)
	}
	down := sortedKeys(idx)
	calls := make([]call, len(down))
	for n, ds := range down {
		k := q.keys(ds)
		args := []any{k.joinPrefix(), JoinTTL.Milliseconds(), k.historyPrefix(), q.cfg.HistoryLimit, q.cfg.Node}
		var occs []string
		for _, i := range idx[ds] {
			args = append(args, entries[i].args...)
			occs = append(occs, entries[i].args[0].(string))
		}
		calls[n] = call{script: q.join, keys: []string{k.agenda()}, args: args, shard: ds, jobs: jobsOf(occs), occs: occs}
	}
	res, errs, err := q.evalEach(ctx, calls)
	if err != nil {
		return 0, nil, fmt.Errorf("queue: drain dependents: %w", err)
	}
	carried := map[int][]string{}
	for n, ds := range down {
		if errs[n] != nil {
			// Left in their outboxes: the next drain tries again.
			err = fmt.Errorf("queue: drain dependents into shard %d: %w", ds, errs[n])
			continue
		}
		codes, _ := res[n].([]any)
		for j, i := range idx[ds] {
			c := int64(0)
			if j < len(codes) {
				c, _ = codes[j].(int64)
			}
			if c < 0 {
				q.cfg.Metrics.RedisError(kindWrongType)
				err = fmt.Errorf("queue: drain dependents: %w", historyFault(ds, q.keys(ds).historyPrefix()+entries[i].args[1].(string), nil))
				continue
			}
			if c == 1 {
				added++
				if !slices.Contains(in, ds) {
					in = append(in, ds)
				}
			}
			carried[entries[i].shard] = append(carried[entries[i].shard], entries[i].field)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	pipe := q.rdb.Pipeline()
	for s, fields := range carried {
		pipe.HDel(cctx, q.keys(s).deps(), fields...)
	}
	if _, derr := pipe.Exec(cctx); derr != nil && err == nil {
		err = fmt.Errorf("queue: drain dependents: delete carried entries: %w", q.callError(derr))
	}
	return added, in, err
}

// Upstream returns the upstream occurrences whose ends ran occ, an occurrence run after
// others (cron.DependentID), sorted; none once its record of them expired (JoinTTL).
func (q *Queue) Upstream(ctx context.Context, occ string) ([]string, error) {
	job, _ := jobOf(occ)
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	m, err := q.rdb.HGetAll(ctx, q.keys(ShardOf(job)).joinPrefix()+occ).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: upstream of %s: %w", occ, q.callError(err))
	}
	var ups []string
	for f, v := range m {
		if f == "!" {
			continue
		}
		if up, _, ok := strings.Cut(v, " "); ok {
			ups = append(ups, up)
		}
	}
	slices.Sort(ups)
	return ups, nil
}
