package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Expansion is the next occurrences of one job, as computed by a node from its schedule.
type Expansion struct {
	// Job is the job's name. It picks the shard (ShardOf) and the watermark that decides
	// which of Due are new.
	Job string
	// Due are the instants the schedule names, ascending, at millisecond precision. Only
	// those after the job's watermark are added, so any number of nodes may send the same
	// expansion.
	Due []time.Time
	// NotBefore are the instants from which each of Due may be claimed, index for index
	// (its agenda score): its due time plus the job's jitter, never earlier. For a job
	// never expanded before, only those not before Redis' now are added. Nil means Due.
	NotBefore []time.Time
	// MaxRuns, if not zero, caps how many occurrences of the job are ever added: the job's
	// max_runs. Those beyond the cap are never added, but the watermark passes them.
	MaxRuns int
	// Next is, index for index with Due, the not-before instant of the occurrence that
	// follows each in the job's schedule (zero at the end of the schedule). After the fleet
	// was away, it tells whether a later occurrence is due too (catch-up latest).
	Next []time.Time
	// Policy is the job's overlap and catch-up policy, stored for the claim script.
	Policy Policy
	// Alerts is what the job alerts on, stored for the claim script with the policy. With
	// a LateAfter, each occurrence added gets its late watch (cron.AlertID), due LateAfter
	// after its not-before; with Missed, the record of Dropped gets its missed alert. Late
	// lists the watches' ids, index for index with IDs.
	Alerts Alerts
	Late   []string
	// Dropped, if not nil, is the record of occurrences the node passed over because they
	// are older than the job's catch-up window: everything due before DroppedUntil. It is
	// written once, by the expansion that finds the job's watermark still before it, which
	// then moves there.
	Dropped *Record
	// DroppedUntil is the end of what Dropped passed over.
	DroppedUntil time.Time
	// Excluded are the records of the schedule's occurrences that a calendar excludes
	// (cron.Excluded), ascending by ScheduledAt, their due time: each is written to history
	// (skipped) instead of adding its occurrence, by the call that finds it new by the rule
	// that adds Due, so once however many nodes send it. They are not counted by MaxRuns,
	// and none is recorded once the cap is reached.
	Excluded []Record
	// DroppedAlert, if not empty, is the id of the missed alert (cron.AlertID) about
	// Dropped's occurrence, added due now by the call that writes Dropped.
	DroppedAlert string
	// Definition is the hash of the job's definition (config.Job.Hash) on the sending node
	// (Config.Node), and Loaded when the node loaded it, on Redis' clock: of two
	// definitions, the one loaded last is in force (see lua/expand.lua). An empty
	// Definition is never in force over another.
	Definition string
	Loaded     time.Time
	// Floor, if not zero, is where the job is planned again from after Redis lost state
	// (Loss.Floor): Due should start there, and those after it that Redis does not know are
	// added although they lie before the job's watermark.
	Floor time.Time
	// IDs are the occurrence ids of Due, index for index (cron.OccurrenceID): the name the
	// occurrence keeps on every attempt and node, in its lock, its history and the ids
	// handlers see. Expand refuses an Expansion whose IDs, Due and NotBefore differ in
	// length.
	IDs []string
}

// Expanded is the outcome of one Expand call.
type Expanded struct {
	// Watermarks is, per job expanded, the due time of its newest occurrence ever added
	// (absent: none yet).
	Watermarks map[string]time.Time
	// Superseded names, per job whose definition in force is newer than the one sent, the
	// node that loaded it: the call added nothing for the job, and the caller should leave
	// it to the nodes with that definition (Claim's yield) while that node is alive.
	Superseded map[string]string
	// Failed holds, per job whose shard refused the call (a key of the wrong type), the
	// *ShardError: nothing was added for it. The other shards' jobs were expanded.
	Failed map[string]error
	// Dropped lists the jobs whose Dropped record this call wrote to history: one node's
	// call writes it, whichever nodes sent it.
	Dropped []string
}

// maxArgsPerCall keeps each expansion script call small, so no single call blocks Redis long.
const maxArgsPerCall = 4096

// Expand adds the occurrences of exps to the agenda, each at most once ever, under the
// definition of each job in force (see lua/expand.lua), and returns the jobs' watermarks
// afterwards, and which jobs a newer definition supersedes.
func (q *Queue) Expand(ctx context.Context, exps []Expansion) (Expanded, error) {
	byShard := map[int][]Expansion{}
	for _, e := range exps {
		if len(e.Due) != len(e.IDs) || (e.NotBefore != nil && len(e.NotBefore) != len(e.Due)) || (e.Next != nil && len(e.Next) != len(e.Due)) ||
			(e.Alerts.LateAfter > 0 && len(e.Late) != len(e.Due)) {
			return Expanded{}, fmt.Errorf("queue: expand %s: %d due times, %d ids, %d start times, %d next times and %d late watches", e.Job, len(e.Due), len(e.IDs), len(e.NotBefore), len(e.Next), len(e.Late))
		}
		s := ShardOf(e.Job)
		byShard[s] = append(byShard[s], e)
	}
	var calls []call
	var jobsIn [][]string
	var shardOf []int
	for shard, list := range byShard {
		k := q.keys(shard)
		var args []any
		var jobs []string
		flush := func() {
			if len(jobs) == 0 {
				return
			}
			calls = append(calls, call{script: q.expand,
				keys:  []string{k.agenda(), k.watermarks(), k.counts(), k.policy(), k.next(), k.late(), k.defs(), k.attempts(), k.epoch(), k.running(), k.alerts()},
				args:  append([]any{len(jobs), k.historyPrefix(), q.cfg.HistoryLimit, k.lockPrefix(), k.waitPrefix(), q.guard.known(shard), q.guardParams()}, args...),
				shard: shard, jobs: jobs})
			jobsIn = append(jobsIn, jobs)
			shardOf = append(shardOf, shard)
			args, jobs = nil, nil
		}
		for _, e := range list {
			if len(args) > 0 && len(args)+10+5*(len(e.Due)+len(e.Excluded)) > maxArgsPerCall {
				flush()
			}
			dropped, until := "", int64(0)
			if e.Dropped != nil {
				b, err := json.Marshal(e.Dropped)
				if err != nil {
					return Expanded{}, fmt.Errorf("queue: expand %s: %w", e.Job, err)
				}
				dropped, until = string(b), e.DroppedUntil.UnixMilli()
			}
			droppedAlert := ""
			if e.Dropped != nil {
				droppedAlert = e.DroppedAlert
			}
			args = append(args, e.Job, len(e.Due)+len(e.Excluded), e.MaxRuns, e.Policy.String(), until, dropped,
				e.Definition+" "+strconv.FormatInt(max(e.Loaded.UnixMilli(), 0), 10)+" "+q.cfg.Node, floorMS(e.Floor),
				e.Alerts.String(), droppedAlert)
			x := 0 // the next of e.Excluded, merged in by due time
			excluded := func(before time.Time, last bool) error {
				for ; x < len(e.Excluded) && (last || e.Excluded[x].ScheduledAt.Before(before)); x++ {
					b, err := json.Marshal(e.Excluded[x])
					if err != nil {
						return fmt.Errorf("queue: expand %s: %w", e.Job, err)
					}
					ms := e.Excluded[x].ScheduledAt.UnixMilli()
					args = append(args, ms, ms, e.Excluded[x].Occurrence, 0, string(b))
				}
				return nil
			}
			for i, d := range e.Due {
				if err := excluded(d, false); err != nil {
					return Expanded{}, err
				}
				nb := d
				if e.NotBefore != nil {
					nb = e.NotBefore[i]
				}
				var next int64
				if e.Next != nil && !e.Next[i].IsZero() {
					next = e.Next[i].UnixMilli()
				}
				late := ""
				if e.Alerts.LateAfter > 0 {
					late = e.Late[i]
				}
				args = append(args, d.UnixMilli(), nb.UnixMilli(), e.IDs[i], next, late)
			}
			if err := excluded(time.Time{}, true); err != nil {
				return Expanded{}, err
			}
			jobs = append(jobs, e.Job)
		}
		flush()
	}
	res, errs, err := q.evalEach(ctx, calls)
	if err != nil {
		return Expanded{}, fmt.Errorf("queue: expand: %w", err)
	}
	out := Expanded{Watermarks: make(map[string]time.Time, len(exps)), Superseded: map[string]string{}}
	for i, r := range res {
		if errs[i] != nil {
			if out.Failed == nil {
				out.Failed = map[string]error{}
			}
			for _, j := range jobsIn[i] {
				out.Failed[j] = fmt.Errorf("queue: expand: %w", errs[i])
			}
			continue
		}
		if err := q.expandReply(shardOf[i], jobsIn[i], r, &out); err != nil {
			return Expanded{}, fmt.Errorf("queue: expand: %w", err)
		}
	}
	return out, nil
}

// expandReply reads the reply of one expansion call on shard for jobs (see lua/expand.lua)
// into out: per job, its watermark or the node whose newer definition supersedes it.
func (q *Queue) expandReply(shard int, jobs []string, r any, out *Expanded) error {
	vals, _, _, err := q.epochReply(shard, r)
	if err != nil || len(vals) != len(jobs) {
		return fmt.Errorf("unexpected reply %v", r)
	}
	for j, v := range vals {
		s := fmt.Sprint(v)
		if rest, ok := strings.CutPrefix(s, "+"); ok {
			out.Dropped = append(out.Dropped, jobs[j])
			s = rest
		}
		if node, ok := strings.CutPrefix(s, "-"); ok {
			out.Superseded[jobs[j]] = node
		} else if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			out.Watermarks[jobs[j]] = time.UnixMilli(ms)
		}
	}
	return nil
}

func floorMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixMilli(), 1)
}

// Watermarks returns the due time of the newest occurrence ever added for each job that has
// one: where a node must resume expanding after the whole fleet was down.
func (q *Queue) Watermarks(ctx context.Context, jobs []string) (map[string]time.Time, error) {
	raw, err := q.perJob(ctx, jobs, keys.watermarks)
	if err != nil {
		return nil, fmt.Errorf("queue: watermarks: %w", err)
	}
	out := make(map[string]time.Time, len(raw))
	for job, str := range raw {
		if ms, err := strconv.ParseInt(str, 10, 64); err == nil {
			out[job] = time.UnixMilli(ms)
		}
	}
	return out, nil
}

// perJob reads the field of each of jobs in the per-shard hash that key names, in one round
// trip, and returns the fields that are set.
func (q *Queue) perJob(ctx context.Context, jobs []string, key func(keys) string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	byShard := map[int][]string{}
	for _, j := range jobs {
		byShard[ShardOf(j)] = append(byShard[ShardOf(j)], j)
	}
	cmds := map[int]*redis.SliceCmd{}
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for s, js := range byShard {
			cmds[s] = p.HMGet(ctx, key(q.keys(s)), js...)
		}
		return nil
	})
	if err != nil {
		return nil, q.callError(err)
	}
	out := map[string]string{}
	for s, c := range cmds {
		for i, v := range c.Val() {
			if str, ok := v.(string); ok {
				out[byShard[s][i]] = str
			}
		}
	}
	return out, nil
}
