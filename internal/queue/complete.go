package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Completion finishes (or reschedules) a claimed occurrence.
//
// With neither Retry nor Release the occurrence is done and leaves the agenda for good.
type Completion struct {
	// Claim is the claim being completed. Its token must still be the lock's value (or the
	// lock must have expired with nobody claiming the occurrence since); otherwise the
	// completion is refused, because the occurrence belongs to a later attempt.
	Claim Claim
	// Retry reschedules the occurrence Delay from now instead of finishing it; its next
	// claim counts the next attempt.
	Retry bool
	// Release reschedules it like Retry but gives the attempt back: this node did not run
	// it (it does not know the job, or the job's schedule differs here), or its run was
	// cancelled by the node's own shutdown, which is not the job's failure.
	Release bool
	// Delay is, with Retry or Release, how long after now on Redis' clock the occurrence is
	// due again (at least a millisecond): the retry backoff. It is ignored otherwise.
	Delay time.Duration
	// Record, if not nil, is appended to the job's history.
	Record *Record
	// Alert, if not empty, is the id of an alert (cron.AlertID) added to the agenda, due
	// now, by the same script call that finishes the occurrence, if and only if this
	// completion is the one that counts: the failure alert of a run that failed for good.
	// It is ignored with Retry or Release.
	Alert string
	// Dependents are the jobs that run after this one and whose after blocks this end
	// concerns. They are written to the shard's deps outbox by the same script call that
	// finishes the occurrence, if and only if this completion is the one that counts, and
	// DrainDependents carries them to their own shards. Ignored with Retry or Release.
	Dependents []Dependent
}

// markerTTL is how long a completion marker outlives the lock it replaces: long enough for
// any re-sent call of the same completion to arrive.
func (q *Queue) markerTTL() time.Duration { return max(q.cfg.Lease, 4*q.cfg.CallTimeout) }

// Completed is the outcome of one Complete call.
type Completed struct {
	// Accepted says for each completion, in order, whether it was applied. A completion is
	// refused when someone else claimed the occurrence since the caller did: it was too
	// late, and the occurrence belongs to another attempt now.
	Accepted []bool
	// LetIn lists the shards where a completion freed its job's overlap slot for a waiting
	// occurrence, which is due now: worth a claim at once.
	LetIn []int
	// Failed is, for each completion, the error of its shard when that shard refused the
	// call (a key of the wrong type): the completion was not applied, and is worth retrying
	// with backoff. The other shards' completions were applied.
	Failed []error
}

// Complete applies completions in one round trip.
func (q *Queue) Complete(ctx context.Context, cs []Completion) (Completed, error) {
	idx := map[int][]int{}
	for i, c := range cs {
		idx[c.Claim.Shard] = append(idx[c.Claim.Shard], i)
	}
	shards := sortedKeys(idx)
	calls := make([]call, len(shards))
	recs := make([]string, len(cs))
	for n, s := range shards {
		args := q.completeArgs(s)
		for _, i := range idx[s] {
			c := cs[i]
			action := "done"
			switch {
			case c.Release:
				action = "release"
			case c.Retry:
				action = "retry"
			}
			rec := ""
			if c.Record != nil {
				b, err := json.Marshal(c.Record)
				if err != nil {
					return Completed{}, fmt.Errorf("queue: complete %s: %w", c.Claim.Occurrence, err)
				}
				rec = string(b)
				recs[i] = rec
			}
			alert := ""
			if action == "done" {
				alert = c.Alert
			}
			deps := ""
			if action == "done" {
				deps = dependentLines(c.Dependents, c.Record)
			}
			args = append(args, c.Claim.Occurrence, c.Claim.Job, strconv.FormatInt(c.Claim.Token, 10),
				strconv.Itoa(c.Claim.Attempt), action, c.Delay.Milliseconds(), rec, alert, deps)
		}
		var occs []string
		for _, i := range idx[s] {
			occs = append(occs, cs[i].Claim.Occurrence)
		}
		calls[n] = q.completeCall(s, args, occs)
	}
	res, errs, err := q.evalEach(ctx, calls)
	if err != nil {
		return Completed{}, fmt.Errorf("queue: complete: %w", err)
	}
	codes, eps, nows, failed, err := q.scatter(res, errs, shards, idx, len(cs))
	if err != nil {
		return Completed{}, fmt.Errorf("queue: complete: %w", err)
	}
	out := Completed{Accepted: make([]bool, len(cs)), Failed: failed}
	for i, c := range codes {
		if c == -1 {
			q.cfg.Metrics.RedisError(kindWrongType) // found by the script: no error reply
			k := q.keys(cs[i].Claim.Shard)
			failed[i] = historyFault(cs[i].Claim.Shard, k.historyPrefix()+cs[i].Claim.Job, []string{cs[i].Claim.Job})
		}
		if failed[i] != nil {
			continue
		}
		out.Accepted[i] = c > 0
		if c > 0 {
			m := completion{shard: cs[i].Claim.Shard, claim: cs[i].Claim, record: recs[i], at: nows[i], epoch: eps[i]}
			if cs[i].Retry || cs[i].Release {
				m.retryAt = nows[i].Add(max(cs[i].Delay, time.Millisecond))
				if cs[i].Release {
					m.claim.Attempt--
				}
			}
			q.guard.remember(m)
		}
		if s := cs[i].Claim.Shard; c == 2 && !slices.Contains(out.LetIn, s) {
			out.LetIn = append(out.LetIn, s)
		}
	}
	return out, nil
}

// completeArgs are the arguments of a completion call on shard, before its completions.
func (q *Queue) completeArgs(shard int) []any {
	k := q.keys(shard)
	return []any{k.lockPrefix(), k.historyPrefix(), q.cfg.HistoryLimit, q.markerTTL().Milliseconds(), k.waitPrefix(),
		q.guard.known(shard), q.guardParams(), q.cfg.Lease.Milliseconds(), k.unplacedPrefix()}
}

func (q *Queue) completeCall(shard int, args []any, occs []string) call {
	k := q.keys(shard)
	return call{script: q.complete, keys: []string{k.agenda(), k.attempts(), k.running(), k.cancel(), k.next(), k.late(), k.epoch(), k.tokens(), k.deps(), k.fan(), k.unplaced()},
		args: args, shard: shard, jobs: jobsOf(occs), occs: occs}
}

// jobOf returns the job of an occurrence id (cron.OccurrenceID: the part before the last
// '@'), and whether the id has one.
func jobOf(occ string) (string, bool) {
	at := strings.LastIndexByte(occ, '@')
	if at < 0 {
		return occ, false
	}
	return occ[:at], true
}

// jobsOf returns the jobs of occurrence ids, each once.
func jobsOf(occs []string) []string {
	var jobs []string
	for _, o := range occs {
		if j, _ := jobOf(o); !slices.Contains(jobs, j) {
			jobs = append(jobs, j)
		}
	}
	return jobs
}

func sortedKeys(m map[int][]int) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

// scatter maps per-shard integer replies, after their epoch, back to the caller's order,
// with the epoch and Redis' clock of each reply, and the error of each item whose shard
// refused the call (errs, from evalEach).
func (q *Queue) scatter(res []any, errs []error, shards []int, idx map[int][]int, n int) ([]int64, []epochView, []time.Time, []error, error) {
	out := make([]int64, n)
	eps := make([]epochView, n)
	nows := make([]time.Time, n)
	failed := make([]error, n)
	for c, s := range shards {
		if errs[c] != nil {
			for _, i := range idx[s] {
				failed[i] = errs[c]
			}
			continue
		}
		vals, ep, now, err := q.epochReply(s, res[c])
		if err != nil {
			return nil, nil, nil, nil, err
		}
		if len(vals) != len(idx[s]) {
			return nil, nil, nil, nil, fmt.Errorf("unexpected reply %v", res[c])
		}
		for j, v := range vals {
			out[idx[s][j]], _ = v.(int64)
			eps[idx[s][j]], nows[idx[s][j]] = ep, now
		}
	}
	return out, eps, nows, failed, nil
}
