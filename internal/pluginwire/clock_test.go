package pluginwire

import (
	"testing"
	"time"
)

// TestClockConversionsErrLate checks the conversions against the machine's clock read
// around them: an instant converted to the machine's clock is never earlier than it, and at
// most the origin's reading spread later; converted back, it is exactly that spread later.
// Both ends convert so, and a run therefore never starts before its instant.
func TestClockConversionsErrLate(t *testing.T) {
	spread := origin.hi - origin.lo
	t.Logf("origin read within %v", time.Duration(spread))
	for _, d := range []time.Duration{0, time.Millisecond, time.Second, -time.Second, time.Hour, -time.Hour} {
		lo := machineMonotonic()
		now := time.Now()
		hi := machineMonotonic()
		at := now.Add(d)
		m := toMachine(at)
		if m < lo+int64(d) || m > hi+int64(d)+spread {
			t.Errorf("toMachine(now%+v) = %d, want within [%d, %d]: the machine's clock read around now, plus the origin's spread",
				d, m, lo+int64(d), hi+int64(d)+spread)
		}
		if back := fromMachine(m); back.Sub(at) != time.Duration(spread) {
			t.Errorf("fromMachine(toMachine(now%+v)) is %v after it, want the origin's spread, %v", d, back.Sub(at), time.Duration(spread))
		}
	}
}
