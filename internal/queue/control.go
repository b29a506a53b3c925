package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Pause is a job's fleet-wide pause: who paused it, when and why. While it stands, every
// node that claims one of the job's occurrences records it as skipped instead of running it.
type Pause struct {
	// Note says why, in the operator's words.
	Note string `json:"note,omitempty"`
	// By names who paused it (user@host of the command).
	By string `json:"by,omitempty"`
	// At is when, by the pausing machine's clock.
	At time.Time `json:"at"`
}

// Pause pauses job fleet-wide from the next claim of any node on; an earlier pause is
// replaced. Runs going already are not stopped.
func (q *Queue) Pause(ctx context.Context, job string, p Pause) error {
	b, err := json.Marshal(p) // one line: the claim script's reply is line-based
	if err != nil {
		return fmt.Errorf("queue: pause %s: %w", job, err)
	}
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	if err := q.rdb.HSet(ctx, q.keys(ShardOf(job)).paused(), job, b).Err(); err != nil {
		return fmt.Errorf("queue: pause %s: %w", job, q.callError(err))
	}
	return nil
}

// Resume ends job's pause and reports whether it was paused.
func (q *Queue) Resume(ctx context.Context, job string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	n, err := q.rdb.HDel(ctx, q.keys(ShardOf(job)).paused(), job).Result()
	if err != nil {
		return false, fmt.Errorf("queue: resume %s: %w", job, q.callError(err))
	}
	return n > 0, nil
}

// Pauses returns the pauses of those of jobs that are paused.
func (q *Queue) Pauses(ctx context.Context, jobs []string) (map[string]Pause, error) {
	raw, err := q.perJob(ctx, jobs, keys.paused)
	if err != nil {
		return nil, fmt.Errorf("queue: pauses: %w", err)
	}
	out := make(map[string]Pause, len(raw))
	for job, str := range raw {
		p, err := decodePause(str)
		if err != nil {
			return nil, fmt.Errorf("queue: pause of %s: %w", job, err)
		}
		out[job] = p
	}
	return out, nil
}

// decodePause reads a pause as the paused hash keeps it.
func decodePause(raw string) (Pause, error) {
	var p Pause
	err := json.Unmarshal([]byte(raw), &p)
	return p, err
}

// triggerMarkerTTL is how long a trigger is remembered as applied: far longer than go-redis
// takes to re-send a call.
const triggerMarkerTTL = 24 * time.Hour

// Trigger adds the occurrences ids (cron.TriggeredID) of job to the agenda, due now by
// Redis' clock, in one round trip, and reports how many this call added: an id sent again
// adds nothing, even after its occurrence ran, so each trigger runs once.
func (q *Queue) Trigger(ctx context.Context, job string, ids ...string) (int, error) {
	k := q.keys(ShardOf(job))
	calls := make([]call, len(ids))
	for i, id := range ids {
		calls[i] = call{script: q.trigger, keys: []string{k.agenda(), k.triggered(id)}, args: []any{id, triggerMarkerTTL.Milliseconds()},
			shard: ShardOf(job), jobs: []string{job}}
	}
	res, err := q.evalAll(ctx, calls)
	if err != nil {
		return 0, fmt.Errorf("queue: trigger %s: %w", job, err)
	}
	added := 0
	for i, r := range res {
		n, ok := r.(int64)
		if !ok {
			return 0, fmt.Errorf("queue: trigger %s: unexpected reply %v", ids[i], r)
		}
		added += int(n)
	}
	return added, nil
}
