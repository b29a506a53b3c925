package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/lease"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// attempt is one claim of an occurrence on its way through execute.
type attempt struct {
	claim queue.Claim
	job   *config.Job // nil when the occurrence is skipped
	due   time.Time
	rec   *queue.Record
	log   *slog.Logger
	alert *sdk.Alert // the event, when the occurrence is an alert (alert.go)
	// end is how the run ended, for its end line; outcome sets it.
	end runEnd
}

// runLog returns the logger of the run of claim c: the node's, with the run's attributes.
func (e *Engine) runLog(c queue.Claim) *slog.Logger {
	return slog.New(&runAttrs{base: e.log.Handler(), claim: c})
}

// runAttrs is the handler of a run's logger: base, with the run's attributes added once the
// run writes a line. slog.Logger.With formats them at once, into a copy of the handler's
// state, which was a sizeable part of what a run cost the node; at the levels a busy node
// logs at, most runs write no line.
type runAttrs struct {
	base  slog.Handler
	claim queue.Claim
	once  sync.Once
	h     slog.Handler
}

func (r *runAttrs) handler() slog.Handler {
	r.once.Do(func() {
		c := r.claim
		r.h = r.base.WithAttrs([]slog.Attr{slog.String("job", c.Job), slog.String("occurrence", c.Occurrence),
			slog.Int("attempt", c.Attempt), slog.Int64("fencing_token", c.Token)})
	})
	return r.h
}

// Enabled asks base: the run's attributes do not change which levels are written.
func (r *runAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return r.base.Enabled(ctx, level)
}

// Handle writes rec with the run's attributes.
func (r *runAttrs) Handle(ctx context.Context, rec slog.Record) error {
	return r.handler().Handle(ctx, rec)
}

// WithAttrs adds attrs after the run's.
func (r *runAttrs) WithAttrs(attrs []slog.Attr) slog.Handler { return r.handler().WithAttrs(attrs) }

// WithGroup opens a group after the run's attributes.
func (r *runAttrs) WithGroup(name string) slog.Handler { return r.handler().WithGroup(name) }

// runEnd is what a run's end line says beyond its record: how grave the end is, why, and
// when the occurrence runs again.
type runEnd struct {
	level   slog.Level
	reason  string
	err     error
	retryIn time.Duration
}

// execute runs one claimed occurrence, not before startAt (monotonic), and records its
// outcome. acquired is when the claim was sent (monotonic): its lease counts from there.
func (e *Engine) execute(ctx context.Context, c queue.Claim, acquired, startAt time.Time) {
	a := &attempt{
		claim: c,
		rec: &queue.Record{
			Occurrence: c.Occurrence, Job: c.Job, Node: e.cfg.Node,
			Attempt: c.Attempt, FencingToken: c.Token,
		},
		log: e.runLog(c),
	}
	job, due, skip := e.resolve(c)
	a.job, a.due, a.rec.ScheduledAt = job, due, due.UTC()
	if job != nil && cron.IsAlert(c.Occurrence) {
		a.alert = e.alertEvent(ctx, c.Occurrence)
	}
	if job != nil {
		a.rec.Upstream = e.upstream(ctx, c.Occurrence)
	}
	var how queue.Completion
	switch {
	case skip == errUnknownJob && e.clock.now().Sub(due) < staleAfter:
		// During a rolling change of the job files another node may know this occurrence:
		// hand it back without using up an attempt, and drop it only once it is stale. (An
		// occurrence of a known job that its schedule no longer has is skipped at once: the
		// claim was this node's because its definition of the job is the one in force.)
		a.log.Debug("releasing occurrence this node does not run", "reason", skip)
		e.complete(queue.Completion{Claim: c, Release: true, Delay: handBackDelay}, time.Now().Add(e.cfg.Lease))
		return
	case skip != "":
		a.rec.Status, a.rec.Error = queue.StatusSkipped, skip
		a.log.Warn("occurrence not run", "status", a.rec.Status, "reason", skip)
	case c.Attempt > job.Retry.Attempts:
		a.rec.Status = queue.StatusAbandoned
		a.rec.Error = fmt.Sprintf("all %d attempts lost their lease (holders died or stalled)", job.Retry.Attempts)
		a.log.Error("occurrence not run", "status", a.rec.Status, "reason", a.rec.Error)
	case job.Fanned() && !cron.IsAlert(c.Occurrence) && !cron.IsPart(c.Occurrence):
		// Its parts run it, and the end of the last records it.
		e.fanOut(ctx, a)
		return
	default:
		// The lease is kept, and renewed, until the outcome is recorded.
		runCtx, release := e.keeper.Hold(ctx, c.Lease(), acquired, c.TTL, startAt)
		defer release()
		how = e.run(runCtx, a, startAt)
	}
	e.record(a, how)
}

// run runs a's handler, not before startAt (monotonic), fills a.rec with what happened and
// returns how to complete the claim.
func (e *Engine) run(ctx context.Context, a *attempt, startAt time.Time) queue.Completion {
	if a.job.Timeout > 0 {
		// The timeout counts from the start, not from the claim ahead of it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, later(startAt, time.Now()).Add(a.job.Timeout), errTimeout)
		defer cancel()
	}
	rec := a.rec
	tail := newTail(e.cfg.OutputLines)
	live := newLiveOutput(e.agenda, a.claim.Occurrence, a.claim.Attempt, a.log)
	rec.StartedAt = e.clock.now().Add(max(time.Until(startAt), 0)).UTC()
	// Logged as the run goes to its plugin, which starts it at StartedAt: with a claim ahead
	// of the due time that is a little later, and waiting for it would cost a timer a run.
	a.log.Info("run started", "lateness", rec.StartedAt.Sub(a.due))
	run := &sdk.Run{
		Job: a.job.Name, ScheduledAt: a.due, Attempt: a.claim.Attempt, FencingToken: a.claim.Token,
		OccurrenceID: a.claim.Occurrence, Node: e.cfg.Node, Settings: a.job.Handler.Settings,
		StopWithin: e.keeper.Margin(), Alert: a.alert, Upstream: a.rec.Upstream,
	}
	if _, i, n, ok := cron.ParsePart(a.claim.Occurrence); ok {
		run.ShardIndex, run.ShardCount = i, n
	}
	res, err := e.h.RunAt(ctx, a.job.Handler.Plugin, run, startAt, func(line string) {
		tail.add(line)
		live.add(ctx, line)
	})
	rec.EndedAt = e.clock.now().UTC()
	if res != nil {
		rec.Message, rec.Metadata, rec.Output = res.Message, res.Metadata, res.Output
	}
	if rec.Output == "" {
		rec.Output = tail.String()
	}
	how := e.outcome(a, context.Cause(ctx), err)
	// Before the record: a reader that sees the occurrence finished has seen every line.
	live.finish(rec.Status, !how.Retry && !how.Release)
	e.logEnd(ctx, a)
	return how
}

// logEnd writes a run's one end line, at the level its end calls for.
func (e *Engine) logEnd(ctx context.Context, a *attempt) {
	end, rec := &a.end, a.rec
	if !a.log.Enabled(ctx, end.level) {
		return
	}
	attrs := make([]any, 0, 14)
	attrs = append(attrs, "status", rec.Status, "duration", rec.EndedAt.Sub(rec.StartedAt).Round(time.Microsecond),
		"lateness", rec.StartedAt.Sub(a.due))
	if end.reason != "" {
		attrs = append(attrs, "reason", end.reason)
	}
	if end.err != nil {
		attrs = append(attrs, "err", end.err)
	}
	if end.retryIn > 0 {
		attrs = append(attrs, "retry_in", end.retryIn)
	}
	if rec.Output != "" {
		attrs = append(attrs, "output", excerpt(rec.Output))
	}
	a.log.Log(ctx, end.level, "run ended", attrs...)
}

// outcome sets a.rec's status, and a.end, from how the run ended (err from the handler,
// cause from its context) and returns how to complete the claim: done, retried, or handed
// back.
func (e *Engine) outcome(a *attempt, cause, err error) queue.Completion {
	rec, end := a.rec, &a.end
	end.level, end.err = slog.LevelWarn, err
	switch {
	case errors.Is(cause, lease.ErrNotRenewed):
		rec.Status, rec.Error = queue.StatusRetrying, "lease not renewed in time (Redis unreachable, slow or refusing the call): "+errString(err)
		end.reason = "cancelled: its lease could not be renewed in time (Redis unreachable, slow or refusing the call); the occurrence runs again"
		return queue.Completion{Retry: true}
	case errors.Is(cause, lease.ErrLost):
		rec.Status, rec.Error = queue.StatusRetrying, "lease lost: "+errString(err)
		end.reason = "cancelled: lease lost to another node; the occurrence runs again"
		return queue.Completion{Retry: true}
	case errors.Is(cause, lease.ErrCancelled) && err != nil:
		// Done for good: the newer occurrence that cancelled it runs once this completes.
		rec.Status, rec.Error = queue.StatusCancelled, "cancelled: a newer occurrence replaces it (overlap cancel_other): "+err.Error()
		end.reason = "cancelled: a newer occurrence of the job replaces it"
		return queue.Completion{}
	case err == nil:
		rec.Status, end.level = queue.StatusSucceeded, slog.LevelInfo
		return queue.Completion{}
	case errors.Is(cause, errShutdown):
		// The node's shutdown is not the job's fault: hand the occurrence back with its
		// attempt, so that another node runs it even on the job's last attempt.
		rec.Status, rec.Error = queue.StatusCancelled, "cancelled at shutdown: "+err.Error()
		end.reason = "cancelled at shutdown; it runs again elsewhere"
		return queue.Completion{Release: true}
	}
	if errors.Is(cause, errTimeout) {
		err = fmt.Errorf("timed out after %s: %w", a.job.Timeout, err)
	}
	rec.Error, end.err = err.Error(), err
	if a.claim.Attempt < a.job.Retry.Attempts && !sdk.IsPermanent(err) {
		rec.Status = queue.StatusRetrying
		delay := a.job.Retry.Delay(a.claim.Attempt)
		end.reason, end.retryIn = "failed; retrying", delay
		return queue.Completion{Retry: true, Delay: delay}
	}
	rec.Status = queue.StatusFailed
	end.level, end.reason = slog.LevelError, "failed; no retry (no attempts left, or a permanent error)"
	return queue.Completion{}
}

// record completes a's claim as how says (done, retry or release), with its run record.
func (e *Engine) record(a *attempt, how queue.Completion) {
	if a.rec.EndedAt.IsZero() { // never started: skipped or abandoned
		a.rec.StartedAt = e.clock.now().UTC()
		a.rec.EndedAt = a.rec.StartedAt
	}
	bound(a.rec)
	how.Claim, how.Record, how.Alert = a.claim, a.rec, failureAlert(a, how)
	how.Dependents = e.dependents(a, how)
	// A node that stops while Redis is away gives up a lease after the run's end.
	switch e.complete(how, time.Now().Add(e.cfg.Lease)) {
	case refused:
		a.log.Warn("completion refused: another node claimed the occurrence after this node's lease ran out", "status", a.rec.Status)
	case unreachable:
		a.log.Error("run not recorded: Redis could not be reached before the node stopped; another node runs the occurrence again", "status", a.rec.Status)
	}
}

// staleAfter is how long past its due time an occurrence that this node does not know is
// handed back for other nodes before it is dropped as skipped.
const staleAfter = time.Minute

// errUnknownJob is why a claim of an occurrence of a job this node does not define is
// handed back.
const errUnknownJob = "job is not defined on this node"

// handBackDelay is when an occurrence handed back is due again: soon, for the nodes that
// know it, but not at once, or this node would claim it back in a tight loop.
const handBackDelay = 2 * time.Second

// resolve finds the job and due time of a claim (the schedule's instant plus the job's
// jitter), or says why it must be skipped: the job is not defined on this node, its
// schedule no longer produces this occurrence, or a calendar excludes it.
func (e *Engine) resolve(c queue.Claim) (*config.Job, time.Time, string) {
	name, due, err := cron.ParseOccurrenceID(c.Occurrence)
	if err != nil {
		return nil, time.Time{}, fmt.Sprintf("malformed occurrence id: %v", err)
	}
	job, ok := e.jobs.Load().byName[name]
	if !ok {
		return nil, due, errUnknownJob
	}
	if parent, _, _, ok := cron.ParsePart(c.Occurrence); ok {
		// A part runs as its parent would: the parent was claimed, and fanned out, as one of
		// the job's occurrences.
		return e.resolve(queue.Claim{Occurrence: parent})
	}
	if _, kind, ok := cron.ParseAlert(c.Occurrence); ok {
		// Its job's alert handler runs it; it is in no schedule, due when it was added.
		aj, why := alertJob(job, kind)
		return aj, due, why
	}
	if cron.IsTriggered(c.Occurrence) {
		return job, due, "" // added by hand: in no schedule, due when it was added
	}
	if next := job.Sched.Next(due.Add(-time.Millisecond)); !next.Equal(due) {
		return nil, due, "occurrence is no longer in the job's schedule"
	}
	// Expansion never adds what a calendar excludes; one added under a definition without
	// the calendar is skipped all the same.
	if x, ok := cron.Excluded(due, job.Location, job.Exclude); ok {
		return nil, due, x.String()
	}
	// The id names the instant the schedule gives; the occurrence was due after its jitter.
	return job, due.Add(cron.Jitter(c.Occurrence, job.Jitter)), ""
}

// errString is a handler's error for a record, which the handler may not have returned.
func errString(err error) string {
	if err == nil {
		return "handler finished after the lease was lost"
	}
	return err.Error()
}

// maxLine bounds one output line kept in a run's tail.
const maxLine = 1 << 10

// tail keeps the last n output lines of a run.
type tail struct {
	mu    sync.Mutex
	n     int
	lines []string
}

func newTail(n int) *tail { return &tail{n: n} }

// add keeps line, cut to a size a record can afford; older lines give way.
func (t *tail) add(line string) {
	line = keepHead(line, maxLine)
	t.mu.Lock()
	defer t.mu.Unlock()
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
	return keepHead(s, 200)
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
