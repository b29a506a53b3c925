// Package embedded runs the in-memory Redis-compatible store (miniredis) that lets one runner
// try cronfleet on one machine without a Redis server.
//
// It is a convenience, never the tested truth: it is single-node (other runners cannot reach
// it) and not durable (a restart forgets the agenda and the history). The same Lua scripts
// run on it, but miniredis only moves TTLs forward when told to, so Run advances them on a
// ticker: without it no lease would ever expire. The runner logs all this at start.
package embedded

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Store is a running embedded store listening on a loopback port.
type Store struct {
	m *miniredis.Miniredis
}

// Start starts the store on a free loopback port.
func Start() (*Store, error) {
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("embedded: start: %w", err)
	}
	return &Store{m: m}, nil
}

// Addr is host:port to dial.
func (s *Store) Addr() string { return s.m.Addr() }

// Run advances TTLs in step with the wall clock until ctx is done, so leases and markers
// expire as they would on a real server (to within the tick).
func (s *Store) Run(ctx context.Context) error {
	const tick = 50 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Close stops the store; everything in it is gone.
func (s *Store) Close() { s.m.Close() }
