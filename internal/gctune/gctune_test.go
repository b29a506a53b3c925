package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestApply(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })

	// An operator's GOGC wins.
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	if tu := apply(Headroom); tu != nil {
		t.Error("with GOGC set, Apply started a tuner")
	}
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("with GOGC set, Apply changed the GC percent to %d", got)
	}

	// Otherwise Apply sets Percent.
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	debug.SetGCPercent(100)
	tu := apply(Headroom)
	t.Cleanup(func() { tu.stopped.Store(true) })
	if got := debug.SetGCPercent(100); got != Percent {
		t.Errorf("GC percent after Apply = %d, want %d", got, Percent)
	}
}

func TestPercentFor(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, Percent},
		{1 << 20, Percent},
		{Headroom / 4, Percent},
		{Headroom / 2, 200},
		{Headroom, 100},
		{Headroom * 10, 100},
	} {
		if got := percentFor(tc.live, Headroom); got != tc.want {
			t.Errorf("percentFor(%d) = %d, want %d", tc.live, got, tc.want)
		}
	}
}

// TestTunerFollowsTheLiveHeap: after collections, the percent is the one for the live heap
// they found, lowered while a large heap is live and raised again once it is gone.
func TestTunerFollowsTheLiveHeap(t *testing.T) {
	orig := debug.SetGCPercent(Percent)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	t.Setenv("GOGC", "") // restored after the test
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	const headroom = 4 << 20 // small, so that a test can make a heap that is large to it
	tu := apply(headroom)
	t.Cleanup(func() { tu.stopped.Store(true) })

	gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	waitFor := func(ok func(int) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			runtime.GC()
			metrics.Read(gogc)
			p := int(gogc[0].Value.Uint64())
			if ok(p) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GOGC is %d, want %s", p, what)
			}
			runtime.Gosched()
		}
	}
	big := make([]byte, 16*headroom)
	for i := range big {
		big[i] = 1
	}
	waitFor(func(p int) bool { return p == 100 }, "100 while the heap is large")
	runtime.KeepAlive(big)
	big = nil
	_ = big
	waitFor(func(p int) bool { return p > 100 }, "more than 100 once the large heap is gone")
}
