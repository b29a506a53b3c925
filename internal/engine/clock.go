package engine

import (
	"context"
	"sync"
	"time"
)

// redisClock is this node's knowledge of Redis' clock, the one clock that decides what is
// due. It learns from samples (Redis' TIME in a reply, and this node's clocks when the call
// was sent and when the reply was in) and serves two purposes, each in its own frame:
//
//   - An estimate of Redis' clock, on the node's clock (Config.Now) plus a measured offset.
//     It decides when to wake up and ask Redis, and what a history record says. It may be
//     off by up to half a round trip either way, so it never decides when a run starts.
//   - The tightest recent lower bound of Redis' clock, on the monotonic clock (time.Now
//     readings). It decides from which instant a claimed run may start, never early.
//
// The instants the engine hands on, a claim's acquired instant to the lease keeper and a
// run's start to the plugin host, are compared there with time.Now: they are monotonic
// readings, never Config.Now ones. A test's skewed Config.Now (time.Now().Add(d)) shifts
// the monotonic reading too, so mixing the frames would move a fence or a start by the skew.
//
// The lower bound: a reply that carries Redis' TIME, read at some instant E, arrives at a
// local instant R ≥ E; so at any later local instant T, Redis' clock reads at least
// TIME + (T − R). The claim's own reply gives such a bound, but a loose one under load:
// Redis writes its replies after the event loop's whole round, which may be other nodes'
// claim scripts, and the node may take a while to read it. A sample taken in a quiet moment
// (the expander's, between the seconds) is tighter, and stays valid as long as Redis' clock
// runs about as fast as this node's monotonic clock: boundDrift allows for both being slewed
// the opposite way (NTP slews at most 500 ppm each), and boundMaxAge keeps the exposure to a
// step of Redis' own clock as short as the claim-ahead it serves.
type redisClock struct {
	node func() time.Time // Config.Now

	mu sync.Mutex
	// The estimate: Redis' clock minus the node's, from the sample with the quickest recent
	// round trip, taken at the monotonic instant at.
	offset time.Duration
	rtt    time.Duration
	at     time.Time
	// The lower bound: Redis said boundNow in a reply that was in by boundRecv (monotonic).
	boundNow  time.Time
	boundRecv time.Time
}

const (
	// offsetMaxAge is how long the estimate from a quick round trip is kept over samples
	// from slower ones: clocks drift, and a quick sample may not come again.
	offsetMaxAge = 10 * time.Second
	boundDrift   = 1e-3
	boundMaxAge  = 2 * time.Second
)

// stamp is one reading of both of this node's clocks, taken together.
type stamp struct {
	node time.Time // Config.Now: the frame of the estimate
	mono time.Time // time.Now: the frame of leases and starts
}

func (c *redisClock) stamp() stamp { return stamp{node: c.node(), mono: time.Now()} }

// observe takes a sample: Redis said redisNow in the reply to a call sent at sent and in by
// recv. For the estimate, quick round trips are trusted more and an old estimate gives way;
// the bound is replaced if the sample bounds Redis' clock tighter, or if the kept one is too
// old.
func (c *redisClock) observe(sent, recv stamp, redisNow time.Time) {
	rtt := recv.mono.Sub(sent.mono)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || rtt <= 2*c.rtt || recv.mono.Sub(c.at) > offsetMaxAge {
		c.offset = redisNow.Sub(sent.node.Add(rtt / 2))
		c.rtt, c.at = rtt, recv.mono
	}
	if c.boundRecv.IsZero() || recv.mono.Sub(c.boundRecv) > boundMaxAge || c.lowerAt(recv.mono).Before(redisNow) {
		c.boundNow, c.boundRecv = redisNow, recv.mono
	}
}

// now is the estimate of Redis' clock now.
func (c *redisClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.node().Add(c.offset)
}

// until converts an instant on Redis' clock into a wait, by the estimate.
func (c *redisClock) until(t time.Time) time.Duration { return t.Sub(c.now()) }

// startAt returns the monotonic instant from which Redis' clock is surely at or past
// notBefore, by the kept bound. Callers have just offered a sample of their own, so the
// kept one is at most boundMaxAge old.
func (c *redisClock) startAt(notBefore time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := notBefore.Sub(c.boundNow)
	if d <= 0 {
		return c.boundRecv
	}
	return c.boundRecv.Add(time.Duration(float64(d) / (1 - boundDrift)))
}

// lowerAt is the kept bound of Redis' clock at the monotonic instant t; c.mu is held.
func (c *redisClock) lowerAt(t time.Time) time.Time {
	el := t.Sub(c.boundRecv)
	return c.boundNow.Add(el - time.Duration(float64(el)*boundDrift))
}

// sampleClock asks Redis for its clock.
func (e *Engine) sampleClock(ctx context.Context) error {
	sent := e.clock.stamp()
	redisNow, err := e.agenda.Time(ctx)
	if err != nil {
		return err
	}
	e.clock.observe(sent, e.clock.stamp(), redisNow)
	return nil
}
