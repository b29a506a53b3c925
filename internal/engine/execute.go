package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/lease"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// execute runs one claimed occurrence, not before startAt (monotonic), and records its
// outcome.
func (e *Engine) execute(ctx context.Context, c queue.Claim, acquired, startAt time.Time) {
	log := e.log.With("job", c.Job, "occurrence", c.Occurrence, "attempt", c.Attempt, "fencing_token", c.Token)
	rec := &queue.Record{
		Occurrence: c.Occurrence, Job: c.Job, Node: e.cfg.Node,
		Attempt: c.Attempt, FencingToken: c.Token,
	}
	// finish records rec and completes the claim as how says (done, retry or release).
	finish := func(how queue.Completion) {
		if rec.EndedAt.IsZero() {
			rec.StartedAt = e.clock.now().UTC()
			rec.EndedAt = rec.StartedAt
		}
		bound(rec)
		how.Claim, how.Record = c, rec
		// The lease cannot outlive its last renewal by more than a lease.
		deadline := time.Now().Add(e.cfg.Lease)
		if !e.complete(how, deadline) {
			log.Warn("completion refused: the lease was lost and the occurrence belongs to another attempt", "status", rec.Status)
		}
	}
	job, due, skip := e.resolve(c)
	rec.ScheduledAt = due.UTC()
	if skip != "" {
		// During a rolling change of the job files another node may know this occurrence:
		// hand it back without using up an attempt, and drop it only once it is stale.
		if e.clock.now().Sub(due) < staleAfter {
			log.Debug("releasing occurrence this node does not run", "reason", skip)
			e.complete(queue.Completion{Claim: c, Release: true, Delay: 2 * time.Second}, time.Now().Add(e.cfg.Lease))
			return
		}
		rec.Status, rec.Error = queue.StatusSkipped, skip
		log.Warn("skipping occurrence", "reason", skip)
		finish(queue.Completion{})
		return
	}
	if c.Attempt > job.Retry.Attempts {
		rec.Status = queue.StatusAbandoned
		rec.Error = fmt.Sprintf("all %d attempts lost their lease (holders died or stalled)", job.Retry.Attempts)
		log.Error("abandoning occurrence", "err", rec.Error)
		finish(queue.Completion{})
		return
	}

	runCtx, release := e.keeper.Hold(ctx, c.Lease(), acquired)
	defer release()
	if job.Timeout > 0 {
		// The timeout counts from the start, not from the claim ahead of it.
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadlineCause(runCtx, later(startAt, time.Now()).Add(job.Timeout), errTimeout)
		defer cancel()
	}
	tail := newTail(e.cfg.OutputLines)
	rec.StartedAt = e.clock.now().Add(max(time.Until(startAt), 0)).UTC()
	res, err := e.h.RunAt(runCtx, job.Handler.Plugin, &sdk.Run{
		Job: job.Name, ScheduledAt: due, Attempt: c.Attempt, FencingToken: c.Token,
		OccurrenceID: c.Occurrence, Node: e.cfg.Node, Settings: job.Handler.Settings,
		StopWithin: e.keeper.Margin(),
	}, startAt, tail.add)
	rec.EndedAt = e.clock.now().UTC()
	if res != nil {
		rec.Message, rec.Metadata, rec.Output = res.Message, res.Metadata, res.Output
	}
	if rec.Output == "" {
		rec.Output = tail.String()
	}
	cause := context.Cause(runCtx)
	switch {
	case errors.Is(cause, lease.ErrLost):
		rec.Status, rec.Error = queue.StatusRetrying, "lease lost: "+errString(err)
		log.Warn("run cancelled: lease lost", "err", err)
		finish(queue.Completion{Retry: true})
	case err == nil:
		rec.Status = queue.StatusSucceeded
		log.Info("run succeeded", "duration", rec.EndedAt.Sub(rec.StartedAt).Round(time.Microsecond), "output", excerpt(rec.Output))
		finish(queue.Completion{})
	case errors.Is(cause, errShutdown):
		// The node's shutdown is not the job's fault: hand the occurrence back with its
		// attempt, so that another node runs it even on the job's last attempt.
		rec.Status, rec.Error = queue.StatusCancelled, "cancelled at shutdown: "+err.Error()
		log.Warn("run cancelled at shutdown; it runs again elsewhere", "err", err)
		finish(queue.Completion{Release: true})
	default:
		if errors.Is(cause, errTimeout) {
			err = fmt.Errorf("timed out after %s: %w", job.Timeout, err)
		}
		rec.Error = err.Error()
		if c.Attempt < job.Retry.Attempts && !sdk.IsPermanent(err) {
			rec.Status = queue.StatusRetrying
			delay := job.Retry.Delay(c.Attempt)
			log.Warn("run failed; retrying", "err", err, "retry_in", delay)
			finish(queue.Completion{Retry: true, Delay: delay})
		} else {
			rec.Status = queue.StatusFailed
			log.Error("run failed; no retry (no attempts left, or a permanent error)", "err", err)
			finish(queue.Completion{})
		}
	}
}

// staleAfter is how long past its due time an occurrence that this node does not know is
// handed back for other nodes before it is dropped as skipped.
const staleAfter = time.Minute

// resolve finds the job and due time of a claim, or says why it must be skipped: the job is
// not defined on this node, or its schedule no longer produces this occurrence.
func (e *Engine) resolve(c queue.Claim) (*config.Job, time.Time, string) {
	name, due, err := cron.ParseOccurrenceID(c.Occurrence)
	if err != nil {
		return nil, time.Time{}, fmt.Sprintf("malformed occurrence id: %v", err)
	}
	job, ok := e.jobs[name]
	if !ok {
		return nil, due, "job is not defined on this node"
	}
	if next := job.Sched.Next(due.Add(-time.Millisecond)); !next.Equal(due) {
		return nil, due, "occurrence is no longer in the job's schedule"
	}
	return job, due, ""
}

func errString(err error) string {
	if err == nil {
		return "handler finished after the lease was lost"
	}
	return err.Error()
}

// tail keeps the last n output lines of a run.
type tail struct {
	mu    sync.Mutex
	n     int
	lines []string
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(line) > 1024 {
		line = line[:1024] + "…"
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.n {
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// excerpt shortens output for a log line.
func excerpt(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = "…" + s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
