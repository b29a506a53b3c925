package workers

import (
	"sync"
	"testing"
	"testing/synctest"
)

// TestPoolReusesGoroutines checks the pool's point: a function given while an earlier one's
// goroutine waits runs on that goroutine, so sequential work never starts a second one.
func TestPoolReusesGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New()
		ran := 0
		for i := range 100 {
			p.Go(func() { ran++ })
			synctest.Wait() // it ran, and its goroutine waits for the next
			if n := p.started.Load(); n != 1 {
				t.Fatalf("after %d sequential functions the pool started %d goroutines, want 1", i+1, n)
			}
		}
		p.Wait()
		if ran != 100 {
			t.Fatalf("ran %d functions, want 100", ran)
		}
		// synctest.Test fails if a goroutine of the pool outlives Wait.
	})
}

// TestPoolRunsConcurrently checks that a function never waits for another: with every
// goroutine busy, the pool starts one more.
func TestPoolRunsConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New()
		const n = 50
		var started sync.WaitGroup
		started.Add(n)
		release := make(chan struct{})
		for range n {
			p.Go(func() { started.Done(); <-release })
		}
		started.Wait() // synctest reports a deadlock if any function waited for another
		close(release)
		p.Wait()
		if got := p.started.Load(); got != n {
			t.Fatalf("started %d goroutines for %d functions running at once, want %d", got, n, n)
		}
	})
}

// TestWaitWaitsForFunctions checks that Wait returns only once every function returned.
func TestWaitWaitsForFunctions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New()
		finished := 0
		var mu sync.Mutex
		release := make(chan struct{})
		for range 10 {
			p.Go(func() {
				<-release
				mu.Lock()
				finished++
				mu.Unlock()
			})
		}
		waited := make(chan struct{})
		go func() { p.Wait(); close(waited) }()
		synctest.Wait() // everything is blocked: the functions on release, Wait on them
		select {
		case <-waited:
			t.Fatal("Wait returned while functions were running")
		default:
		}
		close(release)
		<-waited
		if finished != 10 {
			t.Fatalf("Wait returned with %d of 10 functions finished", finished)
		}
	})
}
