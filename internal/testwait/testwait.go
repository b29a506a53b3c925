// Package testwait is how cronfleet's tests wait: on a condition, with a deadline,
// never on a fixed sleep. A sleep long enough on a quiet machine is too short on a
// loaded CI runner, and too long everywhere else; polling a condition is neither.
package testwait

import (
	"testing"
	"time"
)

// Interval is how often For re-checks its condition: short next to the events the
// tests wait for (runs every second, leases of seconds), long enough not to load the
// machine.
const Interval = 10 * time.Millisecond

// For polls cond until it holds, and fails t (naming what it waited for) if it
// still does not hold after timeout.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// Until polls cond like For, for at most timeout, and reports whether it came to hold: for
// a test that reports what it found either way (how many occurrences ran) rather than
// failing at once.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}
