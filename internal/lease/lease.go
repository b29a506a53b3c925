package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrLost is the cancellation cause of a run whose lease was lost or could not be renewed in
// time. Check it with errors.Is(context.Cause(ctx), ErrLost).
var ErrLost = errors.New("lease: lost")

// ErrNotRenewed is the cause of a run whose lease could not be renewed before its fence
// (Redis unreachable or too slow), as opposed to one found held by another node. It is an
// ErrLost: the run is over either way, but the operator's fix differs.
var ErrNotRenewed = fmt.Errorf("%w: not renewed in time", ErrLost)

// ErrCancelled is the cancellation cause of a run that the fleet asked to stop while its
// lease is still held: a newer occurrence of a job whose overlap policy is cancel_other
// replaces it. Unlike ErrLost the node still holds the lease, and keeps renewing it until
// the run's completion is recorded, so that nobody else runs the occurrence meanwhile.
var ErrCancelled = errors.New("lease: cancelled by the fleet")

// Verdict is what a renewal learned of one lease. The zero value is Lost, so a verdict
// nobody filled in never keeps a run going.
type Verdict uint8

const (
	// Lost means the lock no longer holds the lease's token: someone else owns the
	// occurrence now.
	Lost Verdict = iota
	// Held means the lock was extended.
	Held
	// Cancelled means the lock was extended, but the fleet asked for the run to stop.
	Cancelled
	// Unknown means the renewal's fate is not known (its agenda shard refused the call):
	// the lease stands as it was, and is fenced by time if it stays so.
	Unknown
)

// Lease identifies one held lock: the occurrence, the agenda shard that owns its keys, and
// the fencing token that is the lock's value. It is comparable: a Keeper keys its held
// leases by it.
type Lease struct {
	// Occurrence is the id of the occurrence the lock is taken on: one lock per occurrence,
	// not per job, so overlapping occurrences of a job do not block each other.
	Occurrence string
	// Shard is the agenda shard whose keys hold the lock, so that a Renewer can reach them
	// (and their Redis Cluster slot) without knowing the job.
	Shard int
	// Token is the fencing token the claim stored as the lock's value. A renewal extends the
	// lock only while it still holds this value, so a lease that another node took over is
	// never extended by this one.
	Token int64
	// Attempt is the claim's attempt, which a renewal writes back if Redis lost it.
	Attempt int
}

// Renewer extends leases in Redis; for each lease it reports whether it is still held.
type Renewer interface {
	// Renew extends each of ls by the lease's TTL if its lock still holds its token, and
	// answers one verdict per lease, in order: Lost is for good. An error means nothing is
	// known; the Keeper then retries, and fences by its own clock.
	Renew(ctx context.Context, ls []Lease) ([]Verdict, error)
}

// Config tunes a Keeper.
type Config struct {
	// Lease is the TTL a claim or renewal gives the lock.
	Lease time.Duration
	// Margin is how long before the lease's expiry a run is cancelled when its lease could
	// not be renewed (default Lease/5).
	Margin time.Duration
	// Logger receives lease-loss events; nil discards them.
	Logger *slog.Logger
	// NoHandlerFence leaves the fence out of the contexts that Hold returns, so that a
	// plugin never learns it and its handlers outlive a frozen node's lease: only for the
	// test that shows what the fence prevents.
	NoHandlerFence bool
	// Metrics counts renewals and lost leases; nil counts nothing.
	Metrics Metrics
}

// Metrics is what a Keeper reports for monitoring: internal/metrics implements it.
type Metrics interface {
	// LeasesRenewed counts the leases a renewal extended (ok) and those it did not (failed:
	// the call failed, the shard refused it, or another node holds the lock).
	LeasesRenewed(ok, failed int)
	// LeaseLost counts a run cancelled because its lease was lost, with the cause its
	// context got: ErrNotRenewed, or ErrLost when another node holds the lock.
	LeaseLost(cause error)
}

// noMetrics is the Metrics of a Keeper given none.
type noMetrics struct{}

func (noMetrics) LeasesRenewed(int, int) {}
func (noMetrics) LeaseLost(error)        {}

// Keeper renews the leases of running occurrences and self-fences those it cannot renew.
type Keeper struct {
	r   Renewer
	cfg Config
	log *slog.Logger
	// every is how long after its last success a lease is renewed: a third of the lease,
	// but at most half of the time it stays trusted (Lease − Margin), so that even with a
	// large Margin a renewal, and a retry, come before the fence.
	every time.Duration

	mu     sync.Mutex
	held   map[Lease]*entry
	failed error         // why the last renewal failed; nil after a success
	wake   chan struct{} // a short lease's run starts: renew now
}

type entry struct {
	cancel context.CancelCauseFunc
	last   time.Time     // send time of the last successful claim or renewal (monotonic)
	ttl    time.Duration // what the last claim or renewal gave the lock
	// startAt, for a short lease, is when it is renewed to the full lease, soon after its run
	// starts (zero once it was); start pokes the keeper then.
	startAt time.Time
	start   *time.Timer
	fence   *time.Timer
	// moved is signalled whenever a renewal moves the fence (see Fence).
	moved chan struct{}
	done  bool
	// cancelled: the fleet asked the run to stop; the lease is still renewed.
	cancelled bool
}

// New returns a Keeper renewing through r.
func New(r Renewer, cfg Config) *Keeper {
	if cfg.Margin <= 0 || cfg.Margin >= cfg.Lease {
		cfg.Margin = cfg.Lease / 5
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	every := min(cfg.Lease/3, (cfg.Lease-cfg.Margin)/2)
	return &Keeper{r: r, cfg: cfg, log: log, every: every, held: map[Lease]*entry{}, wake: make(chan struct{}, 1)}
}

// Margin is how long before a lease's expiry a run whose lease could not be renewed is
// cancelled: the time its handler has to stop before another node may take over.
func (k *Keeper) Margin() time.Duration { return k.cfg.Margin }

// Hold starts keeping l, granted for ttl by a claim sent at acquired (a time.Now() reading
// taken before the claim was sent, so it carries the monotonic clock), for a run that starts
// at start. A lease granted for less than the keeper's Lease is one claimed ahead of its run
// and held short, so that a node that dies before its runs start delays them by little: it
// is renewed to the full lease once its run has started, halfway from the start to the
// instant it would be fenced. The returned context is cancelled with
// cause ErrLost when the lease is lost, or ErrCancelled when the fleet asks the run to stop;
// release stops keeping it and must be called once the run's completion was decided.
func (k *Keeper) Hold(ctx context.Context, l Lease, acquired time.Time, ttl time.Duration, start time.Time) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	e := &entry{cancel: cancel, last: acquired, ttl: min(ttl, k.cfg.Lease), moved: make(chan struct{}, 1)}
	if !k.cfg.NoHandlerFence {
		ctx = context.WithValue(ctx, fenceKey{}, Fence{k: k, e: e})
	}
	k.mu.Lock()
	k.held[l] = e
	e.fence = time.AfterFunc(k.validity(e), func() { k.lose(l, e, nil) })
	if e.ttl < k.cfg.Lease {
		// Renewed halfway from the start to the fence: a run that ends sooner, as most
		// do, costs no renewal at all.
		fenceAt := acquired.Add(e.ttl - k.cfg.Margin)
		e.startAt = start
		if fenceAt.After(start) {
			e.startAt = start.Add(fenceAt.Sub(start) / 2)
		}
		e.start = time.AfterFunc(time.Until(e.startAt), k.poke)
	}
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if !e.done {
			e.done = true
			k.stop(e)
			delete(k.held, l)
		}
		k.mu.Unlock()
		cancel(context.Canceled)
	}
	return ctx, release
}

func (k *Keeper) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// stop stops e's timers; k.mu is held.
func (k *Keeper) stop(e *entry) {
	e.fence.Stop()
	if e.start != nil {
		e.start.Stop()
	}
}

// validity is how long from now e's lease may still be trusted; k.mu is held, or e is new.
func (k *Keeper) validity(e *entry) time.Duration {
	return time.Until(k.fenceAt(e))
}

// fenceAt is the instant from which e's lease is no longer trusted, unless renewed before;
// k.mu is held, or e is new.
func (k *Keeper) fenceAt(e *entry) time.Time {
	return e.last.Add(e.ttl - k.cfg.Margin)
}

// Fence is a held lease's fence, as the process running its handler must see it: the
// instant at which the run is cancelled unless the lease was renewed before, which every
// renewal moves. The keeper cancels the run's context at the fence, but only while this
// process runs: a frozen process (SIGSTOP, a stalled VM) cancels nothing, and a handler in
// another process would run on past the lease, next to the node that took the occurrence
// over. So the plugin host sends the fence, and every move of it, to the plugin, which
// stops the handler at the fence by its own clock.
type Fence struct {
	k *Keeper
	e *entry
}

type fenceKey struct{}

// FenceOf returns the fence of the lease whose run ctx is (a context from Hold, or derived
// from one); false when ctx has none.
func FenceOf(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}

// At is the fence now: a time.Now reading, whose monotonic clock counts.
func (f Fence) At() time.Time {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	return f.k.fenceAt(f.e)
}

// Moved is signalled after a renewal moved the fence; it holds one signal, so a reader
// that was busy finds it and reads At once for any number of moves.
func (f Fence) Moved() <-chan struct{} { return f.e.moved }

// due says whether e's lease is to be renewed at now: a third of the lease after its last
// success, or at once for a short lease whose run has started; k.mu is held.
func (k *Keeper) due(e *entry, now time.Time) bool {
	return now.Sub(e.last) >= k.every || (!e.startAt.IsZero() && !now.Before(e.startAt))
}

// lose cancels the run of l: its lock holds another token (taken), or its fence passed
// without a renewal (taken is nil). A fence timer that fired while a renewal succeeded
// re-checks the deadline under the lock and stands down.
func (k *Keeper) lose(l Lease, e *entry, taken error) {
	k.mu.Lock()
	if e.done || (taken == nil && k.validity(e) > 0) {
		k.mu.Unlock()
		return
	}
	e.done = true
	k.stop(e)
	delete(k.held, l)
	failed := k.failed
	k.mu.Unlock()
	if taken != nil {
		k.log.Warn("lease lost: another node holds the occurrence; cancelling run", "occurrence", l.Occurrence, "fencing_token", l.Token)
		k.cfg.Metrics.LeaseLost(taken)
		e.cancel(taken)
		return
	}
	if failed == nil {
		failed = errors.New("no renewal answered")
	}
	k.log.Warn("lease not renewed in time (Redis unreachable, slow or refusing the call): cancelling run before the lease expires",
		"occurrence", l.Occurrence, "fencing_token", l.Token, "err", failed)
	k.cfg.Metrics.LeaseLost(ErrNotRenewed)
	e.cancel(ErrNotRenewed)
}

// Held returns how many leases the keeper holds.
func (k *Keeper) Held() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.held)
}

// Run renews held leases until ctx is done. Each lease is renewed once a third of the lease
// (less with a Margin above a third) has passed since its last success, all due leases in
// one batch.
func (k *Keeper) Run(ctx context.Context) error {
	tick := max(min(k.cfg.Lease/10, k.every/3), 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-k.wake:
		}
		k.renewDue(ctx)
	}
}

func (k *Keeper) renewDue(ctx context.Context) {
	now := time.Now()
	var due []Lease
	var entries []*entry
	k.mu.Lock()
	for l, e := range k.held {
		if k.due(e, now) {
			due = append(due, l)
			entries = append(entries, e)
		}
	}
	k.mu.Unlock()
	if len(due) == 0 {
		return
	}
	ok, err := k.r.Renew(ctx, due)
	if err == nil && len(ok) != len(due) {
		err = fmt.Errorf("lease: renewer answered %d verdicts for %d leases", len(ok), len(due))
	}
	k.mu.Lock()
	k.failed = err
	k.mu.Unlock()
	if err != nil {
		// Not fatal by itself: the fence timers cancel the runs if this goes on too long.
		k.log.Debug("lease renewal failed", "leases", len(due), "err", err)
		k.cfg.Metrics.LeasesRenewed(0, len(due))
		return
	}
	renewed := 0
	defer func() { k.cfg.Metrics.LeasesRenewed(renewed, len(due)-renewed) }()
	for i, l := range due {
		e := entries[i]
		if ok[i] == Unknown {
			continue
		}
		if ok[i] == Lost {
			k.lose(l, e, ErrLost)
			continue
		}
		renewed++
		k.mu.Lock()
		stop := false
		if !e.done {
			e.last, e.ttl, e.startAt = now, k.cfg.Lease, time.Time{}
			e.fence.Reset(k.validity(e))
			select {
			case e.moved <- struct{}{}:
			default:
			}
			stop = ok[i] == Cancelled && !e.cancelled
			e.cancelled = e.cancelled || stop
		}
		k.mu.Unlock()
		if stop {
			e.cancel(ErrCancelled) // the run's owner logs how it ended
		}
	}
}
