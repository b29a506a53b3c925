// Package workers runs functions on goroutines that outlive them.
//
// A goroutine starts with a small stack and grows it by copying, frame by frame, as its
// calls go deeper. A run of a job (on the node, and in its plugin) goes deep enough to grow
// it a few times, and at thousands of runs a second, each on a new goroutine, that copying
// was a sizeable part of what a run cost either process. A Pool hands each function to a
// goroutine that has finished an earlier one and waits for the next, with its stack already
// grown; it starts a goroutine only when none is waiting. So the goroutines are as many as
// the most functions that ever ran at once, which the callers bound (a node's capacity),
// and they live until the pool stops.
//
// It is a few lines rather than a goroutine-pool library because the plugin SDK uses it,
// and every plugin's module would then depend on that library; and because such libraries
// retire idle goroutines on a timer of their own, where this needs only a stop.
package workers

import (
	"sync"
	"sync/atomic"
)

// Pool runs functions on reused goroutines. Its zero value is not usable; see New.
type Pool struct {
	tasks chan func()
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	// started counts the goroutines started, for the tests.
	started atomic.Int64
}

// New returns a pool that runs functions until Wait.
func New() *Pool {
	return &Pool{tasks: make(chan func()), stop: make(chan struct{})}
}

// Go runs f on a goroutine of the pool: one waiting for work if there is one, else a new
// one. It must not be called once Wait was.
func (p *Pool) Go(f func()) {
	select {
	case p.tasks <- f:
	default:
		p.started.Add(1)
		p.wg.Go(func() { p.work(f) })
	}
}

// work runs f, then whatever the pool hands it next, until the pool stops.
func (p *Pool) work(f func()) {
	for {
		f()
		select {
		case f = <-p.tasks:
		case <-p.stop:
			return
		}
	}
}

// Wait stops the pool and returns once every function it was given has returned and its
// goroutines have ended.
func (p *Pool) Wait() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}
