package engine

import (
	"context"
	"sync"
	"time"
)

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
