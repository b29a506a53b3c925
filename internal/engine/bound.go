package engine

import (
	"sync"
	"time"
)

// redisBound keeps the tightest recent lower bound of Redis' clock, to decide when a
// claimed run may start without starting early by Redis' clock.
//
// A reply that carries Redis' TIME, read at some instant E, arrives at a local instant
// R ≥ E; so at any later local instant T, Redis' clock reads at least TIME + (T − R).
// The claim's own reply gives such a bound, but a loose one under load: Redis writes
// its replies after the event loop's whole round, which may be other nodes' claim
// scripts, and the node may take a while to read it. A sample taken in a quiet moment
// (the expander's, between the seconds) is tighter, and stays valid as long as Redis'
// clock runs about as fast as this node's monotonic clock: boundDrift allows for both
// being slewed the opposite way (NTP slews at most 500 ppm each), and boundMaxAge keeps
// the exposure to a step of Redis' own clock as short as the claim-ahead it serves.
type redisBound struct {
	mu   sync.Mutex
	now  time.Time // Redis' TIME of the best sample
	recv time.Time // time.Now() (monotonic) once its reply was in
}

const (
	boundDrift  = 1e-3
	boundMaxAge = 2 * time.Second
)

// observe offers a sample: Redis said redisNow in a reply that was in by recv (a
// time.Now() reading, for its monotonic clock). It replaces the kept one if it bounds
// Redis' clock tighter, or if the kept one is too old.
func (b *redisBound) observe(redisNow, recv time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.recv.IsZero() || recv.Sub(b.recv) > boundMaxAge || b.lowerAt(recv).Before(redisNow) {
		b.now, b.recv = redisNow, recv
	}
}

// lowerAt is the kept sample's lower bound of Redis' clock at the local instant t.
func (b *redisBound) lowerAt(t time.Time) time.Time {
	el := t.Sub(b.recv)
	return b.now.Add(el - time.Duration(float64(el)*boundDrift))
}

// startAt returns the local instant (monotonic) from which Redis' clock is surely at or
// past notBefore, by the kept sample; the caller has just offered its own sample, so the
// kept one is at most boundMaxAge old.
func (b *redisBound) startAt(notBefore time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := notBefore.Sub(b.now)
	if d <= 0 {
		return b.recv
	}
	return b.recv.Add(time.Duration(float64(d) / (1 - boundDrift)))
}
