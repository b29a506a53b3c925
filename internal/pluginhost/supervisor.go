package pluginhost

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// supervisor looks after one plugin: its current process, the restart
// backoff, and the run slots of its MaxConcurrent limit.
type supervisor struct {
	name  string
	argv  []string
	lock  chan struct{} // a mutex that waiting callers can abandon (ctx, Close)
	slots chan struct{} // MaxConcurrent; nil for no limit

	// Guarded by lock.
	cur       *process
	lastStart time.Time

	mu       sync.Mutex
	restarts backoff.ExponentialBackOff // not safe for concurrent use: guarded by mu
	wait     time.Duration              // how long after lastStart the next start may come
	// backingOff is wait != 0, for reached to check without the lock on every run.
	backingOff atomic.Bool
}

func newSupervisor(name string, argv []string, cfg Config) *supervisor {
	s := &supervisor{name: name, argv: argv, lock: make(chan struct{}, 1)}
	if n := cfg.MaxConcurrent[name]; n > 0 {
		s.slots = make(chan struct{}, n)
	}
	s.restarts = backoff.ExponentialBackOff{
		InitialInterval:     cfg.RestartBackoff,
		RandomizationFactor: 0.5, // plugins that failed together do not restart together
		Multiplier:          2,
		MaxInterval:         cfg.MaxRestartBackoff,
	}
	s.restarts.Reset()
	return s
}

// acquire takes one of s's run slots, if s is limited.
func (s *supervisor) acquire(ctx context.Context, closed <-chan struct{}) (release func(), err error) {
	if s.slots == nil {
		return func() {}, nil
	}
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("pluginhost: %s: waiting for one of %d run slots: %w", s.name, cap(s.slots), ctx.Err())
	case <-closed:
		return nil, ErrClosed
	}
}

// failed notes a failure of the plugin: the next start waits for the backoff.
func (s *supervisor) failed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wait = s.restarts.NextBackOff()
	s.backingOff.Store(true)
}

// reached notes a run that reached the plugin: the plugin works, so the next failure
// starts the backoff afresh.
func (s *supervisor) reached() {
	if !s.backingOff.Load() {
		return // the usual case, on every run
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wait = 0
	s.restarts.Reset()
	s.backingOff.Store(false)
}

// startDelay is how long from now the next start must wait.
func (s *supervisor) startDelay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wait - time.Since(s.lastStart)
}

// process returns s's running process, starting one if there is none.
func (h *Host) process(ctx context.Context, s *supervisor) (*process, error) {
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-h.done:
		return nil, ErrClosed
	}
	defer func() { <-s.lock }()
	select {
	case <-h.done:
		return nil, ErrClosed
	default:
	}

	if p := s.cur; p != nil {
		if !p.exited() {
			return p, nil
		}
		h.retireLocked(s, p, "plugin process exited; restarting it", fmt.Errorf("plugin process %s", p.exitStatus()))
	}
	if wait := s.startDelay(); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-h.done:
			return nil, ErrClosed
		}
	}
	s.lastStart = time.Now()
	p, err := h.start(s.name, s.argv)
	if err != nil {
		s.failed()
		return nil, err
	}
	s.cur = p
	return p, nil
}

// retire takes p out of service, unless it was replaced already: the next call starts a
// fresh process, and p is stopped in the background (Close waits for it), so that neither
// the caller nor the callers queued behind s.lock wait for its KillTimeout. why says what
// went wrong, for the log (empty for an orderly stop), and err is logged with it: nil when
// the caller returns the error to its own caller, which logs it. It is the one way a
// process ends.
func (h *Host) retire(s *supervisor, p *process, why string, err error) {
	s.lock <- struct{}{}
	defer func() { <-s.lock }()
	h.retireLocked(s, p, why, err)
}

// retireLocked is retire for a caller holding s.lock. It never blocks: the stop happens
// elsewhere.
func (h *Host) retireLocked(s *supervisor, p *process, why string, err error) {
	if s.cur != p {
		return // retired already, by another caller that saw it fail
	}
	s.cur = nil
	if why != "" {
		h.cfg.Metrics.PluginRestarted(s.name)
	}
	switch {
	case why == "":
		h.log.Debug("stopping plugin", "plugin", s.name, "pid", p.pid())
	case err != nil:
		s.failed()
		h.log.Warn(why, "plugin", s.name, "pid", p.pid(), "err", err)
	default:
		s.failed()
		h.log.Warn(why, "plugin", s.name, "pid", p.pid())
	}
	h.stopping.Go(func() { h.stop(p) })
}
