package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Status is the outcome of one run, as kept in history.
type Status string

// The statuses a run record can have.
const (
	// StatusSucceeded: the handler returned without error.
	StatusSucceeded Status = "succeeded"
	// StatusFailed: the handler failed and no attempt is left (or the error was permanent).
	StatusFailed Status = "failed"
	// StatusRetrying: the handler failed; the occurrence runs again after its backoff.
	StatusRetrying Status = "retrying"
	// StatusAbandoned: earlier holders lost their lease until no attempt was left.
	StatusAbandoned Status = "abandoned"
	// StatusSkipped: the occurrence did not run: its job was paused, another occurrence
	// of it still ran (overlap), or it no longer belongs to its job's schedule.
	StatusSkipped Status = "skipped"
	// StatusCancelled: the run was stopped before it ended: by its node's shutdown (it runs
	// again elsewhere, and another record follows) or by a newer occurrence of a job whose
	// overlap policy is cancel_other (for good).
	StatusCancelled Status = "cancelled"
	// StatusMissed: the occurrence fell due while no node was claiming (the whole fleet or
	// Redis was down) and its job's catch-up policy did not run it.
	StatusMissed Status = "missed"
	// StatusUnplaced: the occurrence fell due while no live node could run it (its job's
	// constraints matched none). Not an end: it waits, and runs when such a node appears,
	// or is missed past its job's catch-up window; a later record says which.
	StatusUnplaced Status = "unplaced"
)

// Record is one run in a job's history.
//
// The engine fills it; the queue keeps it as JSON in the job's capped history list without
// interpreting it. Times are UTC. The JSON names are the stored format: renaming one would
// hide that field of every record already kept.
type Record struct {
	// Occurrence is the occurrence id, shared by every attempt of the same run, so the
	// records of its retries can be told apart from the runs of other occurrences.
	Occurrence string `json:"occurrence"`
	// Job is the job's name; the record lives in this job's history.
	Job string `json:"job"`
	// Node names the node that held the claim and wrote the record.
	Node string `json:"node"`
	// Attempt is which claim of the occurrence this was, counting from 1; it includes
	// attempts whose holder died without writing a record. It is 0 for an occurrence the
	// claim script skipped or found missed before anyone claimed it (and FencingToken too).
	Attempt int `json:"attempt"`
	// FencingToken is the claim's fencing token: compare it with the token a handler's side
	// effects recorded to tell which attempt wrote them.
	FencingToken int64 `json:"fencing_token"`
	// ScheduledAt is the occurrence's due time, not when it ran; zero when its id could not
	// be parsed.
	ScheduledAt time.Time `json:"scheduled_at"`
	// StartedAt is when the handler was started, on the recording node's clock. A run that
	// never started (skipped, abandoned) has StartedAt equal to EndedAt: the time it was
	// recorded.
	StartedAt time.Time `json:"started_at"`
	// EndedAt is when the handler returned, on the recording node's clock.
	EndedAt time.Time `json:"ended_at"`
	// Status is the outcome; StatusRetrying and StatusCancelled mean the occurrence runs
	// again, so another record for it follows.
	Status Status `json:"status"`
	// Error says why the run did not succeed: the handler's error, the lost lease, the
	// shutdown, or why the occurrence was skipped or abandoned. Empty on success.
	Error string `json:"error,omitempty"`
	// Message is the handler's one-line summary of the run (its result's Message, e.g. an
	// exit code or an HTTP status line); empty when the handler returned no result.
	Message string `json:"message,omitempty"`
	// Output is the handler's result Output or, when it returned none, the last lines the
	// run streamed: enough to see why it failed without the node's logs.
	Output string `json:"output,omitempty"`
	// Metadata is the handler's result Metadata, such as "exit_code" or "status_code": the
	// values a dashboard or script can test without parsing Output.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Upstream are, for an occurrence run after others (cron.DependentID), the upstream
	// occurrences whose ends ran it (or, skipped, whose ends did not all match), sorted.
	Upstream []string `json:"upstream,omitempty"`
}

// History returns up to n of job's most recent run records, newest first.
func (q *Queue) History(ctx context.Context, job string, n int) ([]Record, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	raw, err := q.rdb.LRange(ctx, q.keys(ShardOf(job)).historyPrefix()+job, 0, int64(n)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: history %s: %w", job, q.callError(err))
	}
	out := make([]Record, 0, len(raw))
	for _, r := range raw {
		rec, err := decodeRecord(r)
		if err != nil {
			return nil, fmt.Errorf("queue: history %s: decode record: %w", job, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// lastRunsReach bounds how far back LastRuns looks for a record it is not told to pass
// over: past the alerts' runs of one or two events, a job's own run is near the top.
const lastRunsReach = 32

// LastRuns returns the latest run record of each of jobs that has one. With pass, a record
// for which pass is true (an alert's run, say) is passed over for the latest one before it
// that is not, within the job's last few records, so that one round trip serves most jobs
// and a second only those whose latest record is passed over; a job whose recent records
// are all passed over gets its latest.
func (q *Queue) LastRuns(ctx context.Context, jobs []string, pass func(Record) bool) (map[string]Record, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	cmds := make([]*redis.StringCmd, len(jobs))
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, j := range jobs {
			cmds[i] = p.LIndex(ctx, q.keys(ShardOf(j)).historyPrefix()+j, 0)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("queue: last runs: %w", q.callError(err))
	}
	out := make(map[string]Record, len(jobs))
	var again []string
	for i, c := range cmds {
		raw, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue // no run recorded yet
		}
		if err != nil {
			return nil, fmt.Errorf("queue: last run of %s: %w", jobs[i], q.callError(err))
		}
		rec, err := decodeRecord(raw)
		if err != nil {
			return nil, fmt.Errorf("queue: last run of %s: decode record: %w", jobs[i], err)
		}
		out[jobs[i]] = rec
		if pass != nil && pass(rec) {
			again = append(again, jobs[i])
		}
	}
	if len(again) == 0 {
		return out, nil
	}
	ranges := make([]*redis.StringSliceCmd, len(again))
	_, err = q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, j := range again {
			ranges[i] = p.LRange(ctx, q.keys(ShardOf(j)).historyPrefix()+j, 1, lastRunsReach-1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: last runs: %w", q.callError(err))
	}
	for i, c := range ranges {
		for _, raw := range c.Val() {
			rec, err := decodeRecord(raw)
			if err != nil {
				return nil, fmt.Errorf("queue: last run of %s: decode record: %w", again[i], err)
			}
			if !pass(rec) {
				out[again[i]] = rec
				break
			}
		}
	}
	return out, nil
}

// decodeRecord reads a run record as the history list keeps it: the one decoder of what
// Redis returns there, for History and LastRuns alike.
func decodeRecord(raw string) (Record, error) {
	var rec Record
	err := json.Unmarshal([]byte(raw), &rec)
	return rec, err
}
