package engine

import (
	"context"
	"sync"
	"time"
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

// dispatcher claims due occurrences and starts their runs until ctx is done.
func (e *Engine) dispatcher(ctx, runCtx context.Context, runs *sync.WaitGroup) {
	// Ask every shard at once at start: they may hold occurrences due already.
	lastPoll := time.Time{}
	bo := newBackoff()
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
			// The leases count from sent.mono: Redis set their TTLs after it, so they expire
			// no earlier than a lease after it, whatever this node's own clock says.
			sent := e.clock.stamp()
			res, err := e.agenda.Claim(ctx, due, per, e.cfg.ClaimAhead, e.clock.now().Add(e.agenda.CallTimeout()))
			recv := e.clock.stamp()
			if err != nil {
				if !e.retry(ctx, "claim", err, bo) {
					return
				}
				continue
			}
			e.outages.answered()
			bo.Reset()
			e.clock.observe(sent, recv, res.Now)
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
				// redisClock), whatever this node's own clock says.
				startAt := e.clock.startAt(c.NotBefore)
				e.slots <- struct{}{}
				runs.Go(func() {
					defer func() { <-e.slots; e.notify() }()
					e.execute(runCtx, c, sent.mono, startAt)
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
