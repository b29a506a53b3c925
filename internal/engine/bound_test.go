package engine

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestRedisBoundIsNeverEarly simulates Redis' clock running at a rate within the allowed
// drift of this node's monotonic clock, and replies delayed by anything from nothing to
// 50ms: whatever samples it was offered, redisBound never names a start instant at which
// Redis' clock has not reached the due time yet, and a quick sample makes it tight.
func TestRedisBoundIsNeverEarly(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		mono0 := time.Now()
		redis0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(time.Hour))))
		rate := 1 - boundDrift + 2*boundDrift*rng.Float64() // Redis seconds per local second
		redisAt := func(local time.Time) time.Time {
			return redis0.Add(time.Duration(float64(local.Sub(mono0)) * rate))
		}
		var b redisBound
		at := mono0
		for range 20 {
			at = at.Add(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
			lag := time.Duration(rng.Int64N(int64(50 * time.Millisecond)))
			if rng.IntN(4) == 0 {
				lag = 0 // a quick reply
			}
			b.observe(redisAt(at), at.Add(lag)) // TIME read at `at`, reply in at at+lag
			due := redisAt(at).Add(time.Duration(rng.Int64N(int64(time.Second))))
			start := b.startAt(due)
			if got := redisAt(start); got.Before(due.Add(-time.Microsecond)) {
				t.Fatalf("trial %d: start at Redis time %v, before the due time %v (rate %v)", trial, got, due, rate)
			}
		}
	}

	// A quick sample bounds tighter than a late one and is kept; a stale one is replaced.
	var b redisBound
	mono := time.Now()
	redis := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	b.observe(redis, mono)                                                     // quick
	b.observe(redis.Add(100*time.Millisecond), mono.Add(130*time.Millisecond)) // 30ms late
	due := redis.Add(time.Second)
	if late := b.startAt(due).Sub(mono.Add(time.Second)); late > 2*time.Millisecond {
		t.Errorf("start %v after the due time with a quick sample, want within the drift allowance", late)
	}
	b.observe(redis.Add(3*time.Second), mono.Add(3*time.Second+40*time.Millisecond)) // the quick one is stale now
	if got, want := b.startAt(redis.Add(4*time.Second)), mono.Add(4*time.Second+40*time.Millisecond); got.Before(want) {
		t.Errorf("a stale sample was kept: start %v before %v", got.Sub(mono), want.Sub(mono))
	}
}
