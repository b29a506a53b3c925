// Package gctune sets the garbage collector of cronfleet's own processes: the runner and
// the built-in plugins.
//
// Their live heaps are a few MiB, so with Go's default GOGC of 100 they collect several
// times a second at thousands of runs a second, and a collection that falls in a burst of
// starts (every occurrence of a second is due at one instant) slows the burst down: its
// goroutines are drafted into marking. GOGC 400 trades a few more MiB of heap for fewer
// collections; docs/benchmarks.md has what it changed in the fleet benchmark.
//
// It is a package rather than a line in each main because every process of the fleet
// should collect alike; an operator's own GOGC always wins.
package gctune

import (
	"os"
	"runtime/debug"
)

// Percent is the GOGC that Apply sets.
const Percent = 400

// Apply sets GOGC to Percent unless the environment sets GOGC. Call it first in main.
func Apply() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(Percent)
	}
}
