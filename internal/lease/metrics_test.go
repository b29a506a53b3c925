package lease_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cronfleet/cronfleet/internal/lease"
)

// meter is a lease.Metrics that remembers what it was told.
type meter struct {
	mu         sync.Mutex
	ok, failed int
	taken      int
	notRenewed int
}

func (m *meter) LeasesRenewed(ok, failed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ok += ok
	m.failed += failed
}

func (m *meter) LeaseLost(cause error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if errors.Is(cause, lease.ErrNotRenewed) {
		m.notRenewed++
	} else {
		m.taken++
	}
}

// TestMetrics: a renewal counts each lease it extended or not, and each lost lease is
// counted once, by its cause: taken by another node, or not renewed in time.
func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const l = 30 * time.Second
		mine := lease.Lease{Occurrence: "a@1", Shard: 1, Token: 7}
		r := &renewer{reply: func(_ context.Context, n int, ls []lease.Lease) ([]lease.Verdict, error) {
			if n > 0 {
				return nil, errors.New("redis unreachable") // from the second renewal on
			}
			ok := make([]lease.Verdict, len(ls))
			for i, x := range ls {
				if x != occ { // occ's lock was taken over
					ok[i] = lease.Held
				}
			}
			return ok, nil
		}}
		m := &meter{}
		k := lease.New(r, lease.Config{Lease: l, Metrics: m})
		stop := run(t, k)
		defer stop()
		start := time.Now()
		takenCtx, releaseTaken := k.Hold(t.Context(), occ, start, full, time.Time{})
		defer releaseTaken()
		mineCtx, releaseMine := k.Hold(t.Context(), mine, start, full, time.Time{})
		defer releaseMine()
		if _, _, ok := lostAt(takenCtx, start, 2*l); !ok {
			t.Fatal("the taken lease's run was not cancelled")
		}
		if _, _, ok := lostAt(mineCtx, start, 2*l); !ok {
			t.Fatal("the run whose lease could not be renewed was not cancelled")
		}
		synctest.Wait()
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.ok != 1 || m.failed < 2 {
			t.Errorf("renewals ok %d, failed %d; want 1 ok (the first renewal of mine), and failed: occ's and mine's later ones", m.ok, m.failed)
		}
		if m.taken != 1 || m.notRenewed != 1 {
			t.Errorf("leases lost: taken %d, not renewed %d; want one each", m.taken, m.notRenewed)
		}
	})
}
