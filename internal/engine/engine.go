package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/lease"
	"github.com/cronfleet/cronfleet/internal/metrics"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/workers"
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
	// Version is the runner's version, which the node announces to the fleet.
	Version string
	// Jobs is the job set, identical on every node of the fleet; Reload replaces it.
	Jobs []*config.Job
	// Lease is the lease of a claim; it must match the queue's.
	Lease time.Duration
	// Concurrency caps the runs this node has going at once, counting those claimed
	// ahead of their start (default 1024).
	Concurrency int
	// Labels are the node's labels, which jobs' constraints select nodes by; the node's
	// name is always among them (config.NodeLabel). It announces them to the fleet.
	Labels map[string]string
	// Horizon is how far ahead occurrences are added to the agenda (default 10s).
	Horizon time.Duration
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
	// Now is this node's clock (default time.Now). Corrected by its measured offset to
	// Redis' clock, it decides when to wake up and ask Redis, and dates history records;
	// never what is due, nor when a run starts. Tests skew it to show that a wrong clock
	// fires nothing early.
	Now func() time.Time
	// AllowEviction skips the check that Redis cannot evict keys (the embedded store has no
	// eviction; an operator may also override the check, at the risk of duplicate runs).
	AllowEviction bool
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// NoHandlerFence keeps the lease's fence from the plugins (lease.Config.NoHandlerFence):
	// only for the test that shows what it prevents.
	NoHandlerFence bool
	// NoFairShare makes the node claim whole bursts again, whatever the other nodes' shares:
	// only for the test and the benchmark that show what the fair share changes.
	NoFairShare bool
	// Metrics counts the node's runs, claims and leases; nil counts nothing.
	Metrics *metrics.Metrics
}

// Engine is one node's scheduler.
type Engine struct {
	agenda Agenda
	h      Handlers
	cfg    Config
	log    *slog.Logger
	jobs   atomic.Pointer[jobSet]
	// yield lists the jobs whose definition in force is another node's, newer than this
	// node's: the expander writes it, the dispatcher's claims leave them to that node.
	yield   atomic.Pointer[[]string]
	keeper  *lease.Keeper
	outages *outageLog
	faults  *faults
	clock   *redisClock

	wake  chan struct{} // something may be due earlier than the dispatcher thought
	carry chan struct{} // an outbox of upstream ends has something new (after.go)
	heads *heads

	slots       chan struct{} // one token per running occurrence
	completions chan completion

	refill map[int]bool // shards asked again after a full batch: the dispatcher's, for metrics

	// live is how many nodes of the fleet are alive, as the announcer last saw: the fair
	// share of a burst is a part of it (see dispatch.go).
	live atomic.Int64
	// unplaced are the jobs that no live node may run (their constraints match none of the
	// labels the announcer last saw), with their constraints: the announcer's, for claims.
	unplaced atomic.Pointer[map[string]string]
}

// New returns an Engine over agenda (internal/queue's Queue) and h (the plugins).
func New(agenda Agenda, h Handlers, cfg Config) *Engine {
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1024
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = 10 * time.Second
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
	cfg.Labels = maps.Clone(cfg.Labels)
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[config.NodeLabel] = cfg.Node
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		agenda:      agenda,
		h:           h,
		cfg:         cfg,
		log:         log,
		outages:     &outageLog{log: log},
		clock:       &redisClock{node: cfg.Now},
		wake:        make(chan struct{}, 1),
		carry:       make(chan struct{}, 1),
		heads:       newHeads(),
		slots:       make(chan struct{}, cfg.Concurrency),
		completions: make(chan completion),
	}
	// Another node's last claim before a fault may reach a claim-ahead, plus a margin for the
	// nodes' estimates of Redis' clock.
	e.faults = newFaults(log, e.clock.now, cfg.ClaimAhead+time.Second)
	e.jobs.Store(newJobSet(cfg.Jobs, cfg.Labels))
	e.live.Store(1)
	e.keeper = lease.New(agenda, lease.Config{Lease: cfg.Lease, Logger: log, NoHandlerFence: cfg.NoHandlerFence, Metrics: cfg.Metrics})
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
	// ctx stops what finds new work, the expander and the dispatcher. What serves the runs
	// outlives it: a run until it ends or the grace period is over (runCtx), the lease keeper
	// and the completer until the last run has ended (serveCtx), because a run cancelled at
	// the end of the grace period still holds its lease, renewed, until its outcome is
	// recorded. Once every run has ended, both have nothing left to do, so one context
	// stops them together.
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	runCtx, cancelRuns := context.WithCancelCause(serveCtx)
	defer cancelRuns(nil)

	var loops sync.WaitGroup
	loops.Go(func() { _ = e.keeper.Run(serveCtx) })
	loops.Go(func() { e.completer(serveCtx, ctx.Done()) })
	loops.Go(func() { e.expander(ctx) })
	loops.Go(func() { e.announcer(ctx) })
	loops.Go(func() { e.carrier(ctx) })

	runs := workers.New() // a run goes deep: see package workers
	e.dispatcher(ctx, runCtx, runs)
	e.drain(runs, cancelRuns)
	stopServing()
	loops.Wait()
	return nil
}

// drain waits for the runs to end, cancelling those still going once the grace period is
// over.
func (e *Engine) drain(runs *workers.Pool, cancelRuns context.CancelCauseFunc) {
	idle := make(chan struct{})
	go func() { runs.Wait(); close(idle) }()
	if n := len(e.slots); n > 0 {
		e.log.Info("shutting down: waiting for running handlers", "running", n, "grace", e.cfg.Grace)
	}
	grace := time.NewTimer(e.cfg.Grace)
	defer grace.Stop()
	select {
	case <-idle:
	case <-grace.C:
		e.log.Warn("shutdown grace period over: cancelling running handlers", "running", len(e.slots))
		cancelRuns(errShutdown)
		<-idle
	}
}

var (
	errShutdown = errors.New("node shutting down")
	errTimeout  = errors.New("job timeout")
)

// checkEviction refuses to run on a Redis that may evict keys: an evicted lock or watermark
// would run an occurrence twice. An unreachable Redis is waited for, with backoff.
func (e *Engine) checkEviction(ctx context.Context) error {
	bo := newBackoff()
	for {
		err := e.agenda.CheckEviction(ctx)
		var refused *queue.ReplyError
		switch {
		case err == nil:
			e.outages.answered()
			return nil
		case errors.Is(err, queue.ErrEviction):
			return fmt.Errorf("refusing to run: %w (or pass -allow-eviction to accept duplicate runs)", err)
		case errors.As(err, &refused) && refused.Kind != "LOADING" && refused.Kind != "BUSY":
			// Redis refused CONFIG GET for good (a managed Redis that hides it, an ACL);
			// LOADING (a restart reading its data) and BUSY (a long script) pass, so wait.
			return fmt.Errorf("refusing to run: cannot verify that Redis never evicts keys: %w (pass -allow-eviction if you are sure)", err)
		}
		if !e.retry(ctx, "check maxmemory-policy", err, bo) {
			return nil
		}
	}
}
