// Package gctune sets the garbage collector of cronfleet's own processes: the runner and
// the built-in plugins.
//
// Their live heaps are usually a few MiB, so with Go's default GOGC of 100 they collect
// several times a second at thousands of runs a second, and a collection that falls in a
// burst of starts (every occurrence of a second is due at one instant) slows the burst
// down: its goroutines are drafted into marking. GOGC 400 trades a few more MiB of heap for
// fewer collections; docs/benchmarks.md has what it changed in the fleet benchmark.
//
// A runner with a large job set is the exception: its live heap grows with its jobs, and
// at GOGC 400 the heap would grow to five times its live data before each collection, and
// the process keeps that memory. So the percent follows the live heap: after every
// collection it is set so that the heap may grow past its live data by at most Headroom,
// or by the live data itself once that is larger (Go's default), and never by more than
// Percent allows. Small heaps collect as rarely as before, large ones as Go's default
// would have them.
//
// The percent is set from the cleanup of an object nothing references, which the runtime
// runs once a collection has found it unreachable, and which arms the next: no goroutine of
// its own, and nothing to do between collections.
//
// It is a package rather than a line in each main because every process of the fleet
// should collect alike; an operator's own GOGC always wins.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

const (
	// Percent is the GOGC of a process whose live heap is small.
	Percent = 400
	// Headroom is how far past its live data the heap may grow between collections, at
	// most, while the live data is smaller than that.
	Headroom = 64 << 20
)

// Apply sets GOGC to Percent, lowered as the live heap grows (see the package doc), unless
// the environment sets GOGC. Call it first in main.
func Apply() { apply(Headroom) }

// apply is Apply with a headroom of its own; it returns the tuner it started, if any.
func apply(headroom uint64) *tuner {
	if _, set := os.LookupEnv("GOGC"); set {
		return nil
	}
	debug.SetGCPercent(Percent)
	t := &tuner{percent: Percent, headroom: headroom, live: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.arm()
	return t
}

// Release collects garbage and returns the memory the heap does not use to the operating
// system at once. Call it after a burst of allocation that happens once, such as loading a
// job set: a load's garbage is several times the job set it leaves, and the runtime's
// background scavenger would return it only over minutes, during which the process looks
// many times its size.
func Release() { debug.FreeOSMemory() }

// tuner sets the percent after each collection. Only one of its cleanups is pending at a
// time, so they never run concurrently.
type tuner struct {
	percent  int // as last set
	headroom uint64
	live     []metrics.Sample
	stopped  atomic.Bool // for tests, which start several
}

// sentinel is the object whose cleanup runs after a collection. It holds a pointer so that
// the runtime does not pack it with other small objects, which would keep it alive.
type sentinel struct{ _ *int }

// arm has the next collection call adjust.
func (t *tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *tuner) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	}, t)
}

// adjust sets the percent for the live heap the last collection found.
func (t *tuner) adjust() {
	metrics.Read(t.live)
	if t.live[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	if p := percentFor(t.live[0].Value.Uint64(), t.headroom); p != t.percent {
		t.percent = p
		debug.SetGCPercent(p)
	}
}

// percentFor is the GOGC that lets a heap of live bytes grow by headroom, within 100 and
// Percent.
func percentFor(live, headroom uint64) int {
	if live == 0 {
		return Percent
	}
	return int(max(100, min(Percent, headroom*100/live)))
}
