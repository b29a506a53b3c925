package fleet

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// Actor is who takes an action, for the pause record and the audit stream.
type Actor struct {
	// By names them: user@host on the command line, a token's name over HTTP.
	By string
	// Via is "cli" or "http".
	Via string
}

// Action is what an action did: what `runner pause|resume|trigger -json` prints and the
// HTTP API's actions answer.
type Action struct {
	// Job is the job acted on.
	Job string `json:"job"`
	// Action is "paused", "resumed" or "triggered".
	Action string `json:"action"`
	// Pause is the pause recorded, for pause.
	Pause *queue.Pause `json:"pause,omitempty"`
	// WasPaused says, for resume, whether the job was paused.
	WasPaused *bool `json:"was_paused,omitempty"`
	// Occurrence is the id of the occurrence added, for trigger.
	Occurrence string `json:"occurrence,omitempty"`
}

// MaxNote bounds a pause's note: it is shown in lists and kept in Redis with the pause.
const MaxNote = 1000

// Pause pauses job fleet-wide, with the operator's note (its whitespace folded to single
// spaces), and records the action.
func (f *Fleet) Pause(ctx context.Context, job, note string, by Actor) (*Action, error) {
	if err := f.checkJob(job); err != nil {
		return nil, err
	}
	note = strings.Join(strings.Fields(note), " ")
	if len(note) > MaxNote {
		return nil, inputErr("the note has %d bytes; at most %d", len(note), MaxNote)
	}
	p := queue.Pause{Note: note, By: by.By, At: f.cfg.Now().UTC().Truncate(time.Second)}
	if err := f.store.Pause(ctx, job, p); err != nil {
		return nil, err
	}
	f.audit(ctx, by, "pause", job, note, "")
	return &Action{Job: job, Action: "paused", Pause: &p}, nil
}

// Resume ends job's pause, if it has one, and records the action.
func (f *Fleet) Resume(ctx context.Context, job string, by Actor) (*Action, error) {
	if err := f.checkJob(job); err != nil {
		return nil, err
	}
	was, err := f.store.Resume(ctx, job)
	if err != nil {
		return nil, err
	}
	detail := "it was not paused"
	if was {
		detail = "it was paused"
	}
	f.audit(ctx, by, "resume", job, "", detail)
	return &Action{Job: job, Action: "resumed", WasPaused: &was}, nil
}

// Trigger adds an occurrence of job, due now, outside its schedule, and records the action.
// The occurrence runs once, on whichever node claims it, like any other.
func (f *Fleet) Trigger(ctx context.Context, job string, by Actor) (*Action, error) {
	if err := f.checkJob(job); err != nil {
		return nil, err
	}
	id := cron.TriggeredID(job, f.cfg.Now(), nonce())
	if _, err := f.store.Trigger(ctx, job, id); err != nil {
		return nil, err
	}
	f.audit(ctx, by, "trigger", job, "", id)
	return &Action{Job: job, Action: "triggered", Occurrence: id}, nil
}

// Backfill is what a backfill did: what `runner backfill -json` prints and POST
// /v1/jobs/{name}/backfill answers.
type Backfill struct {
	// Job is the job backfilled.
	Job string `json:"job"`
	// DryRun says nothing was enqueued.
	DryRun bool `json:"dry_run"`
	// Occurrences are the ids of the occurrences of the range, oldest first.
	Occurrences []string `json:"occurrences"`
	// Due are their due times, in the same order.
	Due []time.Time `json:"due"`
	// Enqueued is how many were added to the agenda.
	Enqueued int `json:"enqueued"`
}

// BackfillRequest is a past range of a job's schedule to run again now.
type BackfillRequest struct {
	// From is the range's start (exclusive).
	From time.Time `json:"from"`
	// To is the range's end (inclusive), not in the future.
	To time.Time `json:"to"`
	// Limit refuses a range with more occurrences than this (default 100, at most
	// MaxBackfill).
	Limit int `json:"limit"`
	// DryRun lists the occurrences and enqueues nothing.
	DryRun bool `json:"dry_run"`
}

// MaxBackfill bounds a backfill's limit: the range is expanded in memory and enqueued in
// one pipelined call, so a limit without bound would let one request exhaust the node's
// memory or outlast the call's timeout half done. A longer range is backfilled in parts.
const MaxBackfill = 10_000

// Backfill enqueues, due now, the occurrences that job's schedule had in a past range, for
// when the job was broken then, and records the action (a dry run is not recorded).
func (f *Fleet) Backfill(ctx context.Context, job string, r BackfillRequest, by Actor) (*Backfill, error) {
	j, err := f.job(job)
	if err != nil {
		return nil, err
	}
	if r.Limit == 0 {
		r.Limit = 100
	}
	switch {
	case r.From.IsZero() || r.To.IsZero():
		return nil, inputErr("give the range: from and to, RFC 3339 times such as 2026-03-01T00:00:00Z")
	case r.Limit < 1 || r.Limit > MaxBackfill:
		return nil, inputErr("limit %d: want 1 to %d; backfill a longer range in parts", r.Limit, MaxBackfill)
	case !r.To.After(r.From):
		return nil, inputErr("to %s is not after from %s", r.To.Format(time.RFC3339Nano), r.From.Format(time.RFC3339Nano))
	case r.To.After(f.cfg.Now()):
		return nil, inputErr("to %s is in the future: backfill is for a past range; the fleet runs the future by itself", r.To.Format(time.RFC3339Nano))
	}
	due := cron.Expand(j.Sched, r.From, r.To, r.Limit+1)
	if len(due) > r.Limit {
		return nil, inputErr("the range has more than %d occurrences of %s; narrow it or raise the limit", r.Limit, job)
	}
	// One nonce for the call: each backfill is its own set of occurrences, and a call the
	// Redis client re-sends adds none twice.
	n := nonce()
	res := &Backfill{Job: job, DryRun: r.DryRun, Occurrences: make([]string, len(due)), Due: make([]time.Time, len(due))}
	for i, d := range due {
		res.Occurrences[i], res.Due[i] = cron.TriggeredID(job, d, n), d.UTC()
	}
	if r.DryRun || len(due) == 0 {
		return res, nil
	}
	if res.Enqueued, err = f.store.Trigger(ctx, job, res.Occurrences...); err != nil {
		return nil, err
	}
	f.audit(ctx, by, "backfill", job, "", fmt.Sprintf("%d occurrences of (%s, %s]", res.Enqueued,
		r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339)))
	return res, nil
}

// nonce tells apart the occurrences of two triggers or backfills of the same instant.
func nonce() string { return strings.ToLower(rand.Text()[:8]) }

// audit records an action that was taken. The action stands whether or not its record
// could be written (Redis took the action a moment before), so a failure is logged, not
// returned as the action's.
func (f *Fleet) audit(ctx context.Context, by Actor, action, job, note, detail string) {
	err := f.store.Audit(ctx, queue.AuditEntry{By: by.By, Via: by.Via, Action: action, Job: job, Note: note, Detail: detail})
	if err != nil {
		f.log.Warn("action taken but not recorded in the audit stream", "action", action, "job", job, "by", by.By, "err", err)
	}
}

// Audit returns up to n of the most recent actions taken on the fleet, newest first.
func (f *Fleet) Audit(ctx context.Context, n int) ([]queue.AuditEntry, error) {
	if n < 1 || n > queue.AuditLimit {
		return nil, inputErr("n = %d: want 1 to %d entries", n, queue.AuditLimit)
	}
	return f.store.AuditLog(ctx, n)
}
