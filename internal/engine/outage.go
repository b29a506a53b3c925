package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// outageLog logs a Redis outage once when it starts and once when it ends, not per attempt.
// An error reply (LOADING after a restart, READONLY after a failover, OOM) is an outage
// too, of its own kind: it is logged again only when the kind changes.
type outageLog struct {
	mu    sync.Mutex
	log   *slog.Logger
	down  bool
	kind  string
	since time.Time
}

// failed records that the call op failed with err.
func (o *outageLog) failed(op string, err error) {
	kind, msg := "unreachable", "redis unreachable; retrying with backoff"
	var refused *queue.ReplyError
	if errors.As(err, &refused) {
		kind, msg = refused.Kind, "redis refused the call; retrying with backoff"
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

// answered records that a call succeeded.
func (o *outageLog) answered() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down {
		o.down = false
		o.log.Info("redis answering again", "outage", time.Since(o.since).Round(time.Millisecond))
	}
}

// Retries of a failed Redis call wait from about retryFirst, doubling, each wait drawn at
// random within retryJitter of it either way, so that the nodes of a fleet, which lose Redis
// together, do not all call again in the same instant when it is back; and no wait is longer
// than retryLongest, which bounds how long after Redis is back a node notices it.
const (
	retryFirst   = 50 * time.Millisecond
	retryJitter  = 0.25
	retryLongest = 1600 * time.Millisecond
)

// newBackoff returns the delays between retries of a failed Redis call (see retryFirst). It
// is not safe for concurrent use: one per loop.
func newBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     retryFirst,
		RandomizationFactor: retryJitter,
		Multiplier:          2,
		MaxInterval:         time.Duration(float64(retryLongest) / (1 + retryJitter)),
	}
}

// retry records a failed Redis call (an outage is logged once) and waits out the backoff;
// it reports whether ctx is still alive, i.e. whether to try again.
func (e *Engine) retry(ctx context.Context, op string, err error, bo *backoff.ExponentialBackOff) bool {
	if ctx.Err() != nil {
		return false
	}
	e.outages.failed(op, err)
	return sleep(ctx, bo.NextBackOff())
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
