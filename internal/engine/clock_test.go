package engine

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestRedisBoundIsNeverEarly simulates Redis' clock running at a rate within the allowed
// drift of this node's monotonic clock, and replies delayed by anything from nothing to
// 50ms: whatever samples it was offered, redisClock never names a start instant at which
// Redis' clock has not reached the due time yet, and a quick sample makes it tight. The
// node's own clock is off by up to a minute either way: the start is on the monotonic clock.
func TestRedisBoundIsNeverEarly(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		mono0 := time.Now()
		redis0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(time.Hour))))
		rate := 1 - boundDrift + 2*boundDrift*rng.Float64() // Redis seconds per local second
		redisAt := func(local time.Time) time.Time {
			return redis0.Add(time.Duration(float64(local.Sub(mono0)) * rate))
		}
		skew := time.Duration(rng.Int64N(int64(2*time.Minute))) - time.Minute
		at := func(mono time.Time) stamp { return stamp{node: mono.Add(skew), mono: mono} }
		c := &redisClock{node: func() time.Time { return time.Now().Add(skew) }}
		sent := mono0
		for range 20 {
			sent = sent.Add(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
			lag := time.Duration(rng.Int64N(int64(50 * time.Millisecond)))
			if rng.IntN(4) == 0 {
				lag = 0 // a quick reply
			}
			c.observe(at(sent), at(sent.Add(lag)), redisAt(sent)) // TIME read at sent, reply in at sent+lag
			due := redisAt(sent).Add(time.Duration(rng.Int64N(int64(time.Second))))
			start := c.startAt(due)
			if got := redisAt(start); got.Before(due.Add(-time.Microsecond)) {
				t.Fatalf("trial %d: start at Redis time %v, before the due time %v (rate %v)", trial, got, due, rate)
			}
		}
	}

	// A quick sample bounds tighter than a late one and is kept; a stale one is replaced.
	c := &redisClock{node: time.Now}
	at := func(mono time.Time) stamp { return stamp{node: mono, mono: mono} }
	mono := time.Now()
	redis := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	c.observe(at(mono), at(mono), redis)                                                                               // quick
	c.observe(at(mono.Add(100*time.Millisecond)), at(mono.Add(130*time.Millisecond)), redis.Add(100*time.Millisecond)) // 30ms late
	due := redis.Add(time.Second)
	if late := c.startAt(due).Sub(mono.Add(time.Second)); late > 2*time.Millisecond {
		t.Errorf("start %v after the due time with a quick sample, want within the drift allowance", late)
	}
	c.observe(at(mono.Add(3*time.Second)), at(mono.Add(3*time.Second+40*time.Millisecond)), redis.Add(3*time.Second)) // the quick one is stale now
	if got, want := c.startAt(redis.Add(4*time.Second)), mono.Add(4*time.Second+40*time.Millisecond); got.Before(want) {
		t.Errorf("a stale sample was kept: start %v before %v", got.Sub(mono), want.Sub(mono))
	}
}

// TestRedisClockEstimate: the estimate of Redis' clock on a node whose clock is 30s slow is
// off by at most half the round trip of the quickest recent sample; a slower sample does not
// replace it until it is offsetMaxAge old.
func TestRedisClockEstimate(t *testing.T) {
	const skew = -30 * time.Second // the node's clock, behind Redis'
	mono0 := time.Now()
	nodeNow := mono0.Add(skew)
	c := &redisClock{node: func() time.Time { return nodeNow }}
	redisAt := func(mono time.Time) time.Time { return mono } // Redis' clock is the truth
	// sample sends a call at mono, which Redis answers read after read, in by mono+rtt.
	sample := func(mono time.Time, read, rtt time.Duration) {
		c.observe(stamp{node: mono.Add(skew), mono: mono}, stamp{node: mono.Add(rtt + skew), mono: mono.Add(rtt)}, redisAt(mono.Add(read)))
	}
	errAt := func(mono time.Time) time.Duration {
		nodeNow = mono.Add(skew)
		return c.now().Sub(redisAt(mono))
	}

	sample(mono0, 2*time.Millisecond, 10*time.Millisecond)
	if err := errAt(mono0.Add(time.Second)); err.Abs() > 5*time.Millisecond {
		t.Errorf("estimate off by %v after a 10ms round trip, want at most 5ms", err)
	}
	// A round trip more than twice as long, whose TIME was read late in it: kept out.
	sample(mono0.Add(2*time.Second), 45*time.Millisecond, 50*time.Millisecond)
	if err := errAt(mono0.Add(3 * time.Second)); err.Abs() > 5*time.Millisecond {
		t.Errorf("estimate off by %v after a slow sample, want the quick one's (at most 5ms)", err)
	}
	if got := c.until(redisAt(mono0.Add(4 * time.Second))); (got - time.Second).Abs() > 5*time.Millisecond {
		t.Errorf("until an instant 1s ahead on Redis' clock = %v, want 1s ± 5ms", got)
	}
	// Once the quick sample is old, the slow one gives way to whatever comes.
	sample(mono0.Add(offsetMaxAge+time.Second), 45*time.Millisecond, 50*time.Millisecond)
	if err := errAt(mono0.Add(offsetMaxAge + 2*time.Second)); err != 20*time.Millisecond {
		t.Errorf("estimate off by %v after an old quick sample and a fresh slow one, want the slow one's 20ms", err)
	}
}
