package engine

import (
	"context"
	"slices"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// outcome is what became of a completion.
type outcome uint8

const (
	// refused: Redis refused it, because another claim of the occurrence exists.
	refused outcome = iota
	// accepted: Redis recorded it.
	accepted
	// unreachable: the node stopped while Redis could not be reached.
	unreachable
)

// completion is a finished run waiting to be recorded.
type completion struct {
	c      queue.Completion
	result chan<- outcome
	// deadline is, once the node is stopping, when to give up: retrying while Redis is
	// away must not hold the shutdown forever.
	deadline time.Time
}

// complete hands c to the completer and waits for the outcome.
func (e *Engine) complete(c queue.Completion, deadline time.Time) outcome {
	res := make(chan outcome, 1)
	e.completions <- completion{c: c, result: res, deadline: deadline}
	return <-res
}

// maxCompleteBatch bounds the completions sent in one round trip.
const maxCompleteBatch = 256

// completer records finished runs, batching whatever is waiting into one round trip. While
// Redis cannot be reached it keeps trying: a completion counts as long as nobody claimed the
// occurrence since, and after an outage Redis lets the holders report first (the settle,
// see internal/queue). A completion whose shard refused the call waits for that shard's
// backoff apart, so it holds up no other. Once stopping is done (the node shuts down) it
// gives up on each completion at its deadline.
func (e *Engine) completer(ctx context.Context, stopping <-chan struct{}) {
	bo := newBackoff()
	var parked []completion // their shard refused the call: sent again at retryAt
	var retryAt time.Time
	giveUp := func(cs []completion) {
		for _, c := range cs {
			c.result <- unreachable
		}
	}
	for {
		var batch []completion
		var retry <-chan time.Time
		var t *time.Timer
		if len(parked) > 0 {
			t = time.NewTimer(time.Until(retryAt))
			retry = t.C
		}
		select {
		case <-ctx.Done():
			giveUp(parked)
			return
		case c := <-e.completions:
			batch = append(batch, c)
		case <-retry:
			now := time.Now()
			for _, c := range parked {
				if closed(stopping) && !now.Before(c.deadline) {
					c.result <- unreachable
				} else {
					batch = append(batch, c)
				}
			}
			parked = nil
		}
		if t != nil {
			t.Stop()
		}
		for len(batch) > 0 {
			// What finished meanwhile joins the batch.
		drain:
			for len(batch) < maxCompleteBatch {
				select {
				case c := <-e.completions:
					batch = append(batch, c)
				default:
					break drain
				}
			}
			cs := make([]queue.Completion, len(batch))
			for i, c := range batch {
				cs[i] = c.c
			}
			res, err := e.agenda.Complete(ctx, cs)
			var capped []int
			if err == nil {
				e.outages.answered()
				bo.Reset()
				for i, c := range batch {
					switch {
					case i < len(res.Failed) && res.Failed[i] != nil:
						// Its shard refused the call: parked, the others are recorded.
						at := time.Now().Add(e.faults.failed(c.c.Claim.Shard, "complete", res.Failed[i]))
						if len(parked) == 0 || at.Before(retryAt) {
							retryAt = at
						}
						parked = append(parked, c)
					case res.Accepted[i]:
						e.faults.answered(c.c.Claim.Shard)
						e.cfg.Metrics.Recorded(c.c.Record)
						c.result <- accepted
						if e.jobs.Load().limits[c.c.Claim.Job] > 0 {
							// Room under the job's max_concurrent: its waiting
							// occurrence is let back in by the next claim.
							capped = append(capped, c.c.Claim.Shard)
						}
					default:
						c.result <- refused
					}
				}
				// A waiting occurrence got its job's overlap slot: it is due now.
				for _, s := range slices.Concat(res.LetIn, capped) {
					e.heads.lower(s, time.Time{})
				}
				if len(res.LetIn)+len(capped) > 0 {
					e.notify()
				}
				for i, c := range batch {
					// A part's end may have ended its parent, whose end wrote the dependents.
					part := cron.IsPart(c.c.Claim.Occurrence) && len(e.jobs.Load().after[c.c.Claim.Job]) > 0
					if (len(c.c.Dependents) > 0 || part) && i < len(res.Accepted) && res.Accepted[i] {
						e.carryNow() // its end waits in an outbox
						break
					}
				}
				break
			}
			e.outages.failed("complete", err)
			// Keep trying (the scripts are idempotent), unless the node is stopping and the
			// completion's deadline passed.
			now := time.Now()
			kept := batch[:0]
			for _, c := range batch {
				if ctx.Err() == nil && (!closed(stopping) || now.Before(c.deadline)) {
					kept = append(kept, c)
				} else {
					c.result <- unreachable
				}
			}
			batch = kept
			if len(batch) > 0 {
				sleep(ctx, bo.NextBackOff())
			}
		}
	}
}

// closed says whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
