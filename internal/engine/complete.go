package engine

import (
	"context"
	"time"

	"github.com/cronfleet/cronfleet/internal/queue"
)

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
	e.completions <- completion{c: c, result: res, deadline: deadline}
	return <-res
}

// maxCompleteBatch bounds the completions sent in one round trip.
const maxCompleteBatch = 256

// completer records finished runs, batching whatever is waiting into one round trip.
func (e *Engine) completer(ctx context.Context) {
	bo := newBackoff()
	for {
		var batch []completion
		select {
		case <-ctx.Done():
			return
		case c := <-e.completions:
			batch = append(batch, c)
		}
	drain:
		for len(batch) < maxCompleteBatch {
			select {
			case c := <-e.completions:
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
			res, err := e.agenda.Complete(ctx, cs)
			if err == nil {
				e.outages.answered()
				bo.Reset()
				for i, c := range batch {
					c.result <- res.Accepted[i]
				}
				// A waiting occurrence got its job's overlap slot: it is due now.
				for _, s := range res.LetIn {
					e.heads.lower(s, time.Time{})
				}
				if len(res.LetIn) > 0 {
					e.notify()
				}
				break
			}
			e.outages.failed("complete", err)
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
				sleep(ctx, bo.NextBackOff())
			}
		}
	}
}
