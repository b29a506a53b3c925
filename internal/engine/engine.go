package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/lease"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// Handlers runs one occurrence through a handler plugin, not before startAt (a time.Now
// reading). internal/pluginhost implements it: it sends the run to the plugin ahead, and the
// plugin starts it on time.
type Handlers interface {
	RunAt(ctx context.Context, plugin string, run *sdk.Run, startAt time.Time, output func(line string)) (*sdk.Result, error)
}

// Config tunes an Engine. Zero fields take the defaults documented on each.
type Config struct {
	// Node names this node in history and logs.
	Node string
	// Jobs is the job set, identical on every node of the fleet.
	Jobs []*config.Job
	// Lease is the lease of a claim; it must match the queue's.
	Lease time.Duration
	// Concurrency caps the runs this node has going at once, counting those claimed
	// ahead of their start (default 1024).
	Concurrency int
	// Horizon is how far ahead occurrences are added to the agenda (default 10s).
	Horizon time.Duration
	// CatchupWindow bounds how far back occurrences missed while the whole fleet or Redis was
	// down are still run, once each; older ones are skipped with a warning (default 1h).
	CatchupWindow time.Duration
	// Grace is how long running handlers may finish after shutdown begins before they are
	// cancelled (default 10s).
	Grace time.Duration
	// ClaimAhead is how long before their due time occurrences are claimed (default 250ms,
	// negative for none). Their runs are prepared, then started when Redis' clock reaches the
	// due time: a burst of occurrences due at the same instant starts on time instead of
	// queueing behind its own claims.
	ClaimAhead time.Duration
	// IdlePoll is the longest the dispatcher sleeps without asking Redis, to pick up what
	// other nodes rescheduled: retries, leases of dead nodes (default 1s).
	IdlePoll time.Duration
	// OutputLines is how many of a run's last output lines are kept when the handler returns
	// no output excerpt of its own (default 20).
	OutputLines int
	// Now is this node's clock (default time.Now). It only decides when to wake up and ask
	// Redis; tests skew it to show that a wrong clock fires nothing early.
	Now func() time.Time
	// AllowEviction skips the check that Redis cannot evict keys (the embedded store has no
	// eviction; an operator may also override the check, at the risk of duplicate runs).
	AllowEviction bool
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
}

// Engine is one node's scheduler.
type Engine struct {
	q      *queue.Queue
	h      Handlers
	cfg    Config
	log    *slog.Logger
	jobs   map[string]*config.Job
	shards []int
	keeper *lease.Keeper
	redis  *outage
	clock  *offsetClock
	bound  redisBound

	wake  chan struct{} // something may be due earlier than the dispatcher thought
	heads *heads

	slots chan struct{} // one token per running occurrence
	done  chan completion
}

// New returns an Engine over q (the agenda) and h (the plugins).
func New(q *queue.Queue, h Handlers, cfg Config) *Engine {
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1024
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = 10 * time.Second
	}
	if cfg.CatchupWindow <= 0 {
		cfg.CatchupWindow = time.Hour
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	if cfg.ClaimAhead == 0 {
		cfg.ClaimAhead = 250 * time.Millisecond
	}
	cfg.ClaimAhead = max(cfg.ClaimAhead, 0)
	if cfg.IdlePoll <= 0 {
		cfg.IdlePoll = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OutputLines <= 0 {
		cfg.OutputLines = 20
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		q:     q,
		h:     h,
		cfg:   cfg,
		log:   log,
		jobs:  map[string]*config.Job{},
		redis: &outage{log: log},
		clock: &offsetClock{local: cfg.Now},
		wake:  make(chan struct{}, 1),
		heads: &heads{m: map[int]time.Time{}},
		slots: make(chan struct{}, cfg.Concurrency),
		done:  make(chan completion),
	}
	seen := map[int]bool{}
	for _, j := range cfg.Jobs {
		e.jobs[j.Name] = j
		if s := queue.ShardOf(j.Name); !seen[s] {
			seen[s] = true
			e.shards = append(e.shards, s)
		}
	}
	e.keeper = lease.New(q, lease.Config{Lease: cfg.Lease, Logger: log})
	return e
}

// Run schedules and runs occurrences until ctx is cancelled, then drains: it stops claiming,
// lets running handlers finish within the grace period, cancels the rest, records their
// outcome (releasing their leases) and returns.
func (e *Engine) Run(ctx context.Context) error {
	if !e.cfg.AllowEviction {
		if err := e.checkEviction(ctx); err != nil {
			return err
		}
	}
	// Runs, renewals and completions outlive ctx during the grace period: they stop when
	// the engine says so, not when the signal arrives.
	bg := context.WithoutCancel(ctx)
	runCtx, cancelRuns := context.WithCancelCause(bg)
	defer cancelRuns(nil)
	keeperCtx, stopKeeper := context.WithCancel(bg)
	completerCtx, stopCompleter := context.WithCancel(bg)

	var loops sync.WaitGroup
	loops.Go(func() { _ = e.keeper.Run(keeperCtx) })
	completerDone := make(chan struct{})
	go func() { defer close(completerDone); e.completer(completerCtx) }()
	loops.Go(func() { e.expander(ctx) })

	var runs sync.WaitGroup
	e.dispatcher(ctx, runCtx, &runs)

	// Drain.
	idle := make(chan struct{})
	go func() { runs.Wait(); close(idle) }()
	if n := len(e.slots); n > 0 {
		e.log.Info("shutting down: waiting for running handlers", "running", n, "grace", e.cfg.Grace)
	}
	select {
	case <-idle:
	case <-time.After(e.cfg.Grace):
		e.log.Warn("shutdown grace period over: cancelling running handlers", "running", len(e.slots))
		cancelRuns(errShutdown)
		<-idle
	}
	stopCompleter()
	<-completerDone
	stopKeeper()
	loops.Wait()
	return nil
}

var (
	errShutdown = errors.New("node shutting down")
	errTimeout  = errors.New("job timeout")
)

// heads is the dispatcher's knowledge of when each shard next has something due.
type heads struct {
	mu sync.Mutex
	m  map[int]time.Time // absent: nothing known
}

// lower records that shard has an entry due at t, if that is earlier than known.
func (h *heads) lower(shard int, t time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, ok := h.m[shard]; ok && !t.Before(cur) {
		return false
	}
	h.m[shard] = t
	return true
}

func (h *heads) set(shard int, t time.Time, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ok {
		h.m[shard] = t
	} else {
		delete(h.m, shard)
	}
}

// due returns the shards whose head is at or before now, and the earliest head after now.
func (h *heads) due(shards []int, now time.Time) (due []int, next time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range shards {
		t, ok := h.m[s]
		switch {
		case !ok:
		case !t.After(now):
			due = append(due, s)
		case next.IsZero() || t.Before(next):
			next = t
		}
	}
	return due, next
}

func (e *Engine) notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// offsetClock estimates Redis' clock from this node's: local time plus a measured offset.
// It only decides when to wake up and ask Redis; it never decides what is due.
type offsetClock struct {
	local  func() time.Time
	mu     sync.Mutex
	offset time.Duration
	rtt    time.Duration // round trip of the sample behind offset
	at     time.Time
}

// observe takes a sample: Redis said redisNow during a call sent at sent and answered at
// recv. Samples from quick round trips are trusted more; an old estimate gives way.
func (c *offsetClock) observe(sent, recv, redisNow time.Time) {
	rtt := recv.Sub(sent)
	mid := sent.Add(rtt / 2)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || rtt <= 2*c.rtt || recv.Sub(c.at) > 10*time.Second {
		c.offset = redisNow.Sub(mid)
		c.rtt, c.at = rtt, recv
	}
}

func (c *offsetClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.local().Add(c.offset)
}

// until converts an instant on Redis' clock into a wait on this node's.
func (c *offsetClock) until(t time.Time) time.Duration { return t.Sub(c.now()) }

// outage logs a Redis outage once when it starts and once when it ends, not per attempt.
// An error reply (LOADING after a restart, READONLY after a failover, OOM) is an outage
// too, of its own kind: it is logged again only when the kind changes.
type outage struct {
	mu    sync.Mutex
	log   *slog.Logger
	down  bool
	kind  string
	since time.Time
}

func (o *outage) fail(op string, err error) {
	kind, msg := "unreachable", "redis unreachable; retrying with backoff"
	var rerr redis.Error
	if errors.As(err, &rerr) {
		// Redis answered, but refused: the reply's first word says why.
		kind, _, _ = strings.Cut(rerr.Error(), " ")
		msg = "redis refused the call; retrying with backoff"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down && o.kind == kind {
		return
	}
	if !o.down {
		o.since = time.Now()
	}
	o.down, o.kind = true, kind
	o.log.Error(msg, "op", op, "err", err)
}

func (o *outage) ok() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down {
		o.down = false
		o.log.Info("redis answering again", "outage", time.Since(o.since).Round(time.Millisecond))
	}
}

// backoff is a capped exponential delay for retrying Redis calls.
type backoff struct{ n int }

func (b *backoff) next() time.Duration {
	d := 50 * time.Millisecond << min(b.n, 5)
	b.n++
	return d
}

func (b *backoff) reset() { b.n = 0 }

// retry records a failed Redis call (an outage is logged once) and waits out the backoff;
// it reports whether ctx is still alive, i.e. whether to try again.
func (e *Engine) retry(ctx context.Context, op string, err error, bo *backoff) bool {
	if ctx.Err() != nil {
		return false
	}
	e.redis.fail(op, err)
	return sleep(ctx, bo.next())
}

// sleep waits d or until ctx is done; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// expander keeps every job's occurrences added to the agenda a horizon ahead.
func (e *Engine) expander(ctx context.Context) {
	names := make([]string, 0, len(e.jobs))
	for n := range e.jobs {
		names = append(names, n)
	}
	var bo backoff
	var wms map[string]time.Time
	for wms == nil {
		// Learn the offset to Redis' clock first: a new job starts at Redis' now, and a
		// node whose clock is off must not plan from its own.
		err := e.sampleClock(ctx)
		if err == nil {
			wms, err = e.q.Watermarks(ctx, names)
		}
		if err != nil {
			if !e.retry(ctx, "watermarks", err, &bo) {
				return
			}
			continue
		}
		e.redis.ok()
	}
	bo.reset()
	until := map[string]time.Time{} // how far each job was expanded by this node
	for {
		now := e.clock.now()
		var exps []queue.Expansion
		end := now.Add(e.cfg.Horizon)
		for _, j := range e.cfg.Jobs {
			if u, ok := until[j.Name]; ok && u.After(now.Add(e.cfg.Horizon/2)) {
				continue
			}
			if x := e.plan(j, wms, now); len(x.Due) > 0 {
				exps = append(exps, x)
			} else {
				until[j.Name] = end // nothing due within the horizon: nothing to send
			}
		}
		if len(exps) > 0 {
			got, err := e.q.Expand(ctx, exps)
			if err != nil {
				if !e.retry(ctx, "expand", err, &bo) {
					return
				}
				continue
			}
			e.redis.ok()
			bo.reset()
			for _, x := range exps {
				until[x.Job] = end
				if wm, ok := got[x.Job]; ok {
					wms[x.Job] = wm
				}
				if e.heads.lower(queue.ShardOf(x.Job), x.Due[0]) {
					e.notify()
				}
			}
		}
		// Sample Redis' clock every half-second mark, when the node and Redis are quiet:
		// the tight lower bound it gives lets the next second's runs start on time (see
		// redisBound); the claims' own replies come back in the thick of the burst.
		// Best effort: when Redis is away, Expand above reports the outage.
		_ = e.sampleClock(ctx)
		now = e.clock.now()
		if !sleep(ctx, untilMidSecond(now)) {
			return
		}
	}
}

// sampleClock asks Redis for its clock, for the offset estimate and the start bound.
func (e *Engine) sampleClock(ctx context.Context) error {
	sent := e.clock.local()
	redisNow, err := e.q.Time(ctx)
	if err != nil {
		return err
	}
	recv := time.Now()
	e.clock.observe(sent, e.clock.local(), redisNow)
	e.bound.observe(redisNow, recv)
	return nil
}

// untilMidSecond is how long from now (Redis' clock) until the next half-second mark: most
// schedules fall due on whole seconds, so expanding in between keeps the expansion's CPU
// out of the way of the runs starting then.
func untilMidSecond(now time.Time) time.Duration {
	mid := now.Truncate(time.Second).Add(500 * time.Millisecond)
	if !mid.After(now) {
		mid = mid.Add(time.Second)
	}
	return mid.Sub(now)
}

// maxExpand bounds the occurrences one job adds per expansion (a catch-up after a long
// outage of a job that runs every second, say).
const maxExpand = 20000

// plan computes the occurrences of j to add: from its watermark (or now, for a job never
// expanded) to a horizon ahead, skipping what is older than the catch-up window.
func (e *Engine) plan(j *config.Job, wms map[string]time.Time, now time.Time) queue.Expansion {
	from := now.Add(-time.Second)
	if wm, ok := wms[j.Name]; ok {
		from = wm
		if oldest := now.Add(-e.cfg.CatchupWindow); from.Before(oldest) {
			if first := j.Sched.Next(from); !first.IsZero() && first.Before(oldest) {
				e.log.Warn("skipping occurrences missed by the whole fleet, older than the catch-up window",
					"job", j.Name, "from", first.UTC(), "to", oldest.UTC(), "catchup_window", e.cfg.CatchupWindow)
			}
			from = oldest
			wms[j.Name] = oldest // said once: the next plan starts here
		}
	}
	x := queue.Expansion{Job: j.Name}
	x.Due = cron.Expand(j.Sched, from, now.Add(e.cfg.Horizon), maxExpand)
	x.IDs = make([]string, len(x.Due))
	for i, d := range x.Due {
		x.IDs[i] = cron.OccurrenceID(j.Name, d)
	}
	return x
}

// dispatcher claims due occurrences and starts their runs until ctx is done.
func (e *Engine) dispatcher(ctx, runCtx context.Context, runs *sync.WaitGroup) {
	// Ask every shard at once at start: they may hold occurrences due already.
	lastPoll := time.Time{}
	var bo backoff
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return
		}
		now := e.clock.now()
		due, next := e.heads.due(e.shards, now.Add(e.cfg.ClaimAhead))
		if time.Since(lastPoll) >= e.cfg.IdlePoll {
			due = e.shards
		}
		free := cap(e.slots) - len(e.slots)
		if len(due) > 0 && free > 0 {
			if time.Since(lastPoll) >= e.cfg.IdlePoll {
				lastPoll = time.Now()
			}
			// Never claim more than can start at once: a claim waiting for a slot would
			// let its lease run out while nobody renews it.
			if free < len(due) {
				due = due[:free]
			}
			per := min(64, free/len(due))
			// acquired starts the leases on the monotonic clock, whatever the wall clock says.
			acquired := time.Now()
			sent := e.clock.local()
			res, err := e.q.Claim(ctx, due, per, e.cfg.ClaimAhead, e.clock.now().Add(e.q.CallTimeout()))
			recv, received := e.clock.local(), time.Now()
			if err != nil {
				if !e.retry(ctx, "claim", err, &bo) {
					return
				}
				continue
			}
			e.redis.ok()
			bo.reset()
			e.clock.observe(sent, recv, res.Now)
			e.bound.observe(res.Now, received)
			full := map[int]int{}
			for _, c := range res.Claims {
				full[c.Shard]++
			}
			for _, s := range due {
				h, ok := res.Heads[s]
				if full[s] >= per {
					h, ok = res.Now, true // more may be due: ask again at once
				}
				e.heads.set(s, h, ok)
			}
			for _, c := range res.Claims {
				// Never early: from startAt on, Redis' clock is surely past NotBefore (see
				// redisBound), whatever this node's own clock says.
				startAt := e.bound.startAt(c.NotBefore)
				e.slots <- struct{}{}
				runs.Go(func() {
					defer func() { <-e.slots; e.notify() }()
					e.execute(runCtx, c, acquired, startAt)
				})
			}
			continue
		}
		wait := e.cfg.IdlePoll - time.Since(lastPoll)
		if !next.IsZero() && free > 0 {
			wait = min(wait, e.clock.until(next)-e.cfg.ClaimAhead)
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-e.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}

// completion is a finished run waiting to be recorded.
type completion struct {
	c      queue.Completion
	result chan<- bool // accepted?
	// deadline is when the lease surely expired: after it, retrying the call is pointless.
	deadline time.Time
}

// complete hands c to the completer and waits for Redis' verdict.
func (e *Engine) complete(c queue.Completion, deadline time.Time) bool {
	res := make(chan bool, 1)
	e.done <- completion{c: c, result: res, deadline: deadline}
	return <-res
}

// completer records finished runs, batching whatever is waiting into one round trip.
func (e *Engine) completer(ctx context.Context) {
	var bo backoff
	for {
		var batch []completion
		select {
		case <-ctx.Done():
			return
		case c := <-e.done:
			batch = append(batch, c)
		}
	drain:
		for len(batch) < 256 {
			select {
			case c := <-e.done:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		for len(batch) > 0 {
			cs := make([]queue.Completion, len(batch))
			for i, c := range batch {
				cs[i] = c.c
			}
			ok, err := e.q.Complete(ctx, cs)
			if err == nil {
				e.redis.ok()
				bo.reset()
				for i, c := range batch {
					c.result <- ok[i]
				}
				break
			}
			e.redis.fail("complete", err)
			// Keep trying while a lease may still be ours; the scripts are idempotent.
			now := time.Now()
			kept := batch[:0]
			for _, c := range batch {
				if now.Before(c.deadline) && ctx.Err() == nil {
					kept = append(kept, c)
				} else {
					c.result <- false
				}
			}
			batch = kept
			if len(batch) > 0 {
				sleep(ctx, bo.next())
			}
		}
	}
}

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

// checkEviction refuses to run on a Redis that may evict keys: an evicted lock or watermark
// would run an occurrence twice. An unreachable Redis is waited for, with backoff.
func (e *Engine) checkEviction(ctx context.Context) error {
	var bo backoff
	for {
		err := e.q.CheckEviction(ctx)
		var rerr redis.Error
		switch {
		case err == nil:
			e.redis.ok()
			return nil
		case errors.Is(err, queue.ErrEviction):
			return fmt.Errorf("refusing to run: %w (or pass -allow-eviction to accept duplicate runs)", err)
		case errors.As(err, &rerr):
			return fmt.Errorf("refusing to run: cannot verify that Redis never evicts keys: %w (pass -allow-eviction if you are sure)", err)
		}
		if !e.retry(ctx, "check maxmemory-policy", err, &bo) {
			return nil
		}
	}
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
