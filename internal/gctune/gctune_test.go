package gctune

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })

	// An operator's GOGC wins.
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	Apply()
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("with GOGC set, Apply changed the GC percent to %d", got)
	}

	// Otherwise Apply sets Percent.
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	debug.SetGCPercent(100)
	Apply()
	if got := debug.SetGCPercent(100); got != Percent {
		t.Errorf("GC percent after Apply = %d, want %d", got, Percent)
	}
}
