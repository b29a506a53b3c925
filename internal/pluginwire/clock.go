package pluginwire

import (
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// A run's start travels as an instant of the machine's monotonic clock (CLOCK_MONOTONIC),
// which host and plugin share, which no step of the wall clock moves, and which does not
// care how long the request was in transit. Go keeps a monotonic reading in every
// time.Now, but relative to its own process; these two convert between the two. Each
// errs late: the start may come a little after its instant, never before.
//
// On Linux, Go's monotonic clock is the machine's, read through the vDSO, from another
// origin; so the two differ by a constant, read once per process (origin), and a
// conversion needs no system call. Reading the machine's clock (machineMonotonic) is one,
// which cost a run more than the rest of the conversion, twice on each end.

// machineMonotonic is the machine's monotonic clock now, in nanoseconds.
func machineMonotonic() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("pluginwire: clock_gettime(CLOCK_MONOTONIC): " + err.Error()) // Linux always has it
	}
	return ts.Nano()
}

// clockOrigin pairs a time.Now reading with the machine's clock read just before it (lo)
// and just after it (hi).
type clockOrigin struct {
	at     time.Time
	lo, hi int64
}

// origin is read as the package initialises, before any caller could read time.Now from
// a fake clock (testing/synctest), and never changes.
var origin = readOrigin()

// readOrigin keeps the tightest of a few readings: a thread descheduled between two of them
// would make every conversion of the process late by as much.
func readOrigin() clockOrigin {
	var best clockOrigin
	for i := range 8 {
		lo := machineMonotonic()
		at := time.Now()
		hi := machineMonotonic()
		if i == 0 || hi-lo < best.hi-best.lo {
			best = clockOrigin{at: at, lo: lo, hi: hi}
		}
	}
	return best
}

// toMachine converts t, a time.Now reading, into the machine's clock. An instant too far
// ahead for an int64 is sent as the latest one.
func toMachine(t time.Time) int64 {
	d := t.Sub(origin.at)
	if int64(d) > math.MaxInt64-origin.hi {
		return math.MaxInt64
	}
	return origin.hi + int64(d)
}

// fromMachine converts an instant of the machine's clock into a time.Now reading of this
// process. An instant too far back for a time.Duration from the origin (only another host
// than this package's would send one) is read as the earliest one, so that it is past, not
// wrapped around into the far future.
func fromMachine(ns int64) time.Time {
	if ns < math.MinInt64+origin.lo {
		return origin.at.Add(math.MinInt64)
	}
	return origin.at.Add(time.Duration(ns - origin.lo))
}
