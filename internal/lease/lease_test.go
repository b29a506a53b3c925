package lease_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/lease"
)

// All tests run in a synctest bubble: time.Sleep and the Keeper's timers use fake time, and
// advance only when every goroutine of the bubble is blocked, so every instant is exact.

// renewer is a fake lease.Renewer. reply decides each call's outcome (nil: all held).
type renewer struct {
	reply func(ctx context.Context, n int, ls []lease.Lease) ([]lease.Verdict, error)

	mu    sync.Mutex
	calls []renewal
}

type renewal struct {
	at     time.Time
	leases []lease.Lease
	ok     bool // returned without error, every lease held
}

// full is a claim's TTL that the keeper caps at its lease: a lease not claimed ahead.
const full = time.Hour

func (r *renewer) Renew(ctx context.Context, ls []lease.Lease) ([]lease.Verdict, error) {
	r.mu.Lock()
	n := len(r.calls)
	r.calls = append(r.calls, renewal{at: time.Now(), leases: slices.Clone(ls)})
	r.mu.Unlock()
	var ok []lease.Verdict
	var err error
	if r.reply != nil {
		ok, err = r.reply(ctx, n, ls)
	} else {
		ok = make([]lease.Verdict, len(ls))
		for i := range ok {
			ok[i] = lease.Held
		}
	}
	r.mu.Lock()
	r.calls[n].ok = err == nil && !slices.Contains(ok, lease.Lost)
	r.mu.Unlock()
	return ok, err
}

func (r *renewer) log() []renewal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// run starts k.Run and returns a func that stops it and waits for it to return.
func run(t *testing.T, k *lease.Keeper) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	}
}

// lostAt waits for ctx to end, at most until limit from start, and returns when it ended
// (relative to start) and its cause; ok is false when it was still alive at the limit.
func lostAt(ctx context.Context, start time.Time, limit time.Duration) (at time.Duration, cause error, ok bool) {
	select {
	case <-ctx.Done():
		return time.Since(start), context.Cause(ctx), true
	case <-time.After(time.Until(start.Add(limit))):
		return 0, nil, false
	}
}

var occ = lease.Lease{Occurrence: "backup@2026-03-29T01:30:00Z", Shard: 3, Token: 42}

func TestRenewsEveryThirdOfLease(t *testing.T) {
	for _, l := range []time.Duration{30 * time.Second, 3 * time.Second, 10 * time.Minute} {
		t.Run(l.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := &renewer{}
				k := lease.New(r, lease.Config{Lease: l})
				stop := run(t, k)
				defer stop()
				start := time.Now()
				ctx, release := k.Hold(t.Context(), occ, start, full, time.Time{})
				defer release()

				time.Sleep(10 * l)
				if err := context.Cause(ctx); err != nil {
					t.Fatalf("run cancelled (%v) while every renewal succeeded", err)
				}
				calls := r.log()
				if len(calls) < 10 {
					t.Fatalf("%d renewals in 10 leases, want at least 10", len(calls))
				}
				// About every Lease/3: not sooner (no busy renewing), and late by at most the
				// keeper's tick (Lease/10).
				last := start
				for i, c := range calls {
					if gap := c.at.Sub(last); gap < l/3 || gap > l/3+l/10 {
						t.Errorf("renewal %d came %v after the previous success, want %v to %v", i, gap, l/3, l/3+l/10)
					}
					if diff := cmp.Diff([]lease.Lease{occ}, c.leases); diff != "" {
						t.Errorf("renewal %d leases (-want +got):\n%s", i, diff)
					}
					last = c.at
				}
				if n := k.Held(); n != 1 {
					t.Errorf("Held() = %d, want 1", n)
				}
			})
		})
	}
}

// TestHealthyRenewalKeepsLease: with a Renewer that always succeeds, no run is ever
// cancelled, whatever the Margin.
func TestHealthyRenewalKeepsLease(t *testing.T) {
	const l = 30 * time.Second
	for _, margin := range []time.Duration{0, time.Second, l / 5, l / 2, l * 3 / 4, l * 9 / 10} {
		t.Run(margin.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := &renewer{}
				k := lease.New(r, lease.Config{Lease: l, Margin: margin})
				stop := run(t, k)
				defer stop()
				ctx, release := k.Hold(t.Context(), occ, time.Now(), full, time.Time{})
				defer release()
				if at, cause, lost := lostAt(ctx, time.Now(), 10*l); lost {
					t.Errorf("run cancelled at %v with cause %v while every renewal succeeded (%d renewals)", at, cause, len(r.log()))
				}
			})
		})
	}
}

func TestSelfFencing(t *testing.T) {
	const l = 30 * time.Second
	errDown := errors.New("redis: connection refused")
	failing := func(context.Context, int, []lease.Lease) ([]lease.Verdict, error) { return nil, errDown }
	tests := []struct {
		name   string
		margin time.Duration
		// acquiredAgo is how long before Hold the claim was sent.
		acquiredAgo time.Duration
		reply       func(ctx context.Context, n int, ls []lease.Lease) ([]lease.Verdict, error)
		// wantMargin is the margin the fence must keep before the lease's expiry in Redis.
		wantMargin time.Duration
	}{
		{name: "renewals fail", reply: failing, wantMargin: l / 5},
		{name: "renewals fail, margin 2s", margin: 2 * time.Second, reply: failing, wantMargin: 2 * time.Second},
		{name: "renewals fail, margin not below lease", margin: l, reply: failing, wantMargin: l / 5},
		{name: "deadline counts from the claim's send time", acquiredAgo: 5 * time.Second, reply: failing, wantMargin: l / 5},
		{
			name: "renewals succeed twice, then fail",
			reply: func(_ context.Context, n int, ls []lease.Lease) ([]lease.Verdict, error) {
				if n < 2 {
					return []lease.Verdict{lease.Held}, nil
				}
				return nil, errDown
			},
			wantMargin: l / 5,
		},
		{
			// The deadline counts from when a renewal was sent, not when it was answered.
			name: "slow renewal succeeds once, then renewals fail",
			reply: func(_ context.Context, n int, ls []lease.Lease) ([]lease.Verdict, error) {
				if n == 0 {
					time.Sleep(5 * time.Second)
					return []lease.Verdict{lease.Held}, nil
				}
				return nil, errDown
			},
			wantMargin: l / 5,
		},
		{
			name: "renewer hangs",
			reply: func(ctx context.Context, _ int, _ []lease.Lease) ([]lease.Verdict, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
			wantMargin: l / 5,
		},
		{
			// Its success comes after the deadline that its own send time set.
			name: "renewer answers too late",
			reply: func(context.Context, int, []lease.Lease) ([]lease.Verdict, error) {
				time.Sleep(l)
				return []lease.Verdict{lease.Held}, nil
			},
			wantMargin: l / 5,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := &renewer{reply: tc.reply}
				k := lease.New(r, lease.Config{Lease: l, Margin: tc.margin})
				stop := run(t, k)
				defer stop()
				acquired := time.Now().Add(-tc.acquiredAgo)
				ctx, release := k.Hold(t.Context(), occ, acquired, full, time.Time{})
				defer release()

				at, cause, lost := lostAt(ctx, acquired, 10*l)
				if !lost {
					t.Fatalf("run not cancelled after %v without a successful renewal", 10*l)
				}
				if !errors.Is(cause, lease.ErrNotRenewed) {
					t.Errorf("cancellation cause = %v, want lease.ErrNotRenewed", cause)
				}
				// The fence counts from the send time of the last success (the claim's, or a
				// renewal's): exactly Lease − Margin later, before Redis can expire the lock,
				// and never earlier.
				base := time.Duration(0)
				for _, c := range r.log() {
					if c.ok && c.at.Sub(acquired) < at {
						base = c.at.Sub(acquired)
					}
				}
				if want := base + l - tc.wantMargin; at != want {
					t.Errorf("cancelled %v after the claim, want %v (last success at %v, lease %v, margin %v)", at, want, base, l, tc.wantMargin)
				}
				if n := k.Held(); n != 0 {
					t.Errorf("Held() = %d after the lease was lost, want 0", n)
				}
			})
		})
	}
}

func TestRenewalReportsLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const l = 30 * time.Second
		mine := lease.Lease{Occurrence: "a@1", Shard: 1, Token: 7}
		r := &renewer{reply: func(_ context.Context, _ int, ls []lease.Lease) ([]lease.Verdict, error) {
			ok := make([]lease.Verdict, len(ls))
			for i, x := range ls {
				if x != occ { // occ's lock was taken over
					ok[i] = lease.Held
				}
			}
			return ok, nil
		}}
		k := lease.New(r, lease.Config{Lease: l})
		stop := run(t, k)
		defer stop()
		start := time.Now()
		lostCtx, releaseLost := k.Hold(t.Context(), occ, start, full, time.Time{})
		defer releaseLost()
		keptCtx, releaseKept := k.Hold(t.Context(), mine, start, full, time.Time{})
		defer releaseKept()

		at, cause, lost := lostAt(lostCtx, start, l)
		if !lost {
			t.Fatalf("run not cancelled after a renewal reported its lease lost")
		}
		calls := r.log()
		if len(calls) == 0 || at != calls[0].at.Sub(start) {
			t.Errorf("cancelled at %v, want at once, at the first renewal (%v)", at, calls)
		}
		if !errors.Is(cause, lease.ErrLost) || errors.Is(cause, lease.ErrNotRenewed) {
			t.Errorf("cancellation cause = %v, want lease.ErrLost, not ErrNotRenewed", cause)
		}
		// Both leases went in one batch; the other one is still held.
		if got := calls[0].leases; len(got) != 2 {
			t.Errorf("first renewal batch = %v, want both leases", got)
		}
		time.Sleep(2 * l)
		if err := context.Cause(keptCtx); err != nil {
			t.Errorf("the renewed run was cancelled: %v", err)
		}
		if n := k.Held(); n != 1 {
			t.Errorf("Held() = %d, want 1", n)
		}
		for _, c := range r.log()[1:] {
			if slices.Contains(c.leases, occ) {
				t.Errorf("lost lease renewed again at %v", c.at.Sub(start))
			}
		}
	})
}

// TestRenewalReportsCancelled: a renewal that finds the run cancelled by the fleet stops
// the run at once with ErrCancelled, and goes on renewing its lease until it is released,
// so that nobody else takes the occurrence while its completion is on its way.
func TestRenewalReportsCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const l = 30 * time.Second
		r := &renewer{reply: func(_ context.Context, _ int, ls []lease.Lease) ([]lease.Verdict, error) {
			v := make([]lease.Verdict, len(ls))
			for i := range v {
				v[i] = lease.Cancelled
			}
			return v, nil
		}}
		k := lease.New(r, lease.Config{Lease: l})
		stop := run(t, k)
		defer stop()
		start := time.Now()
		ctx, release := k.Hold(t.Context(), occ, start, full, time.Time{})

		at, cause, ended := lostAt(ctx, start, l)
		if !ended || !errors.Is(cause, lease.ErrCancelled) {
			t.Fatalf("run ended: %v, cause %v; want cancelled with lease.ErrCancelled", ended, cause)
		}
		if calls := r.log(); len(calls) != 1 || at != calls[0].at.Sub(start) {
			t.Errorf("cancelled at %v, want at the first renewal (%v)", at, calls)
		}
		time.Sleep(3 * l)
		if n, calls := k.Held(), len(r.log()); n != 1 || calls < 7 {
			t.Errorf("after 3 leases: %d held, %d renewals; want the lease still held and renewed", n, calls)
		}
		release()
		synctest.Wait()
		before := len(r.log())
		time.Sleep(l)
		if after := len(r.log()); after != before || k.Held() != 0 {
			t.Errorf("renewals went on after release: %d, then %d", before, after)
		}
	})
}

func TestRelease(t *testing.T) {
	const l = 30 * time.Second
	for _, after := range []time.Duration{0, l / 6, l / 2, 2 * l / 3} {
		t.Run(after.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Renewals fail: without release the run would be fenced at Lease − Margin.
				r := &renewer{reply: func(context.Context, int, []lease.Lease) ([]lease.Verdict, error) {
					return nil, errors.New("redis down")
				}}
				k := lease.New(r, lease.Config{Lease: l})
				stop := run(t, k)
				defer stop()
				start := time.Now()
				ctx, release := k.Hold(t.Context(), occ, start, full, time.Time{})
				time.Sleep(after)
				release()
				releasedAt := time.Now()
				if err := ctx.Err(); err == nil {
					t.Errorf("run context alive after release")
				}
				if n := k.Held(); n != 0 {
					t.Errorf("Held() = %d after release, want 0", n)
				}
				time.Sleep(3 * l)
				if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) || errors.Is(cause, lease.ErrLost) {
					t.Errorf("cause after release = %v, want context.Canceled and not lease.ErrLost", cause)
				}
				// A renewal sent in the very instant of the release may race it; none later.
				for _, c := range r.log() {
					if c.at.After(releasedAt) {
						t.Errorf("renewal %v after release", c.at.Sub(start))
					}
				}
				release() // a second release is harmless
			})
		})
	}
}

func TestReleaseAfterLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const l = 30 * time.Second
		r := &renewer{reply: func(_ context.Context, _ int, ls []lease.Lease) ([]lease.Verdict, error) {
			return make([]lease.Verdict, len(ls)), nil
		}}
		k := lease.New(r, lease.Config{Lease: l})
		stop := run(t, k)
		defer stop()
		ctx, release := k.Hold(t.Context(), occ, time.Now(), full, time.Time{})
		if _, _, lost := lostAt(ctx, time.Now(), l); !lost {
			t.Fatalf("run not cancelled")
		}
		release()
		if cause := context.Cause(ctx); !errors.Is(cause, lease.ErrLost) {
			t.Errorf("cause after loss then release = %v, want lease.ErrLost", cause)
		}
	})
}

func TestHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := lease.New(&renewer{}, lease.Config{Lease: 30 * time.Second})
		if n := k.Held(); n != 0 {
			t.Errorf("Held() of a new keeper = %d, want 0", n)
		}
		var releases []func()
		for i := range 3 {
			_, release := k.Hold(t.Context(), lease.Lease{Occurrence: "j@" + string(rune('a'+i)), Token: int64(i)}, time.Now(), full, time.Time{})
			releases = append(releases, release)
		}
		want := []int{3, 2, 1, 0}
		got := []int{k.Held()}
		for _, release := range releases {
			release()
			got = append(got, k.Held())
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Held() while releasing (-want +got):\n%s", diff)
		}
	})
}

// TestShortLeaseRenewedWhenItsRunStarts: a lease claimed ahead of its run, for less than the
// full lease, is renewed to the full lease once the run has started, halfway to when it would
// be fenced, not before (a node that dies in between leaves it short, and a run that ends
// sooner costs no renewal); if that renewal fails, the run is fenced the keeper's margin
// before the short lease ends.
func TestShortLeaseRenewedWhenItsRunStarts(t *testing.T) {
	const (
		leaseFor = 30 * time.Second
		ahead    = 250 * time.Millisecond
		short    = ahead + leaseFor/5 + time.Second
	)
	for _, fail := range []bool{false, true} {
		t.Run(map[bool]string{false: "renewed", true: "renewal fails"}[fail], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := &renewer{}
				if fail {
					r.reply = func(context.Context, int, []lease.Lease) ([]lease.Verdict, error) {
						return nil, errors.New("redis unreachable")
					}
				}
				k := lease.New(r, lease.Config{Lease: leaseFor})
				defer run(t, k)()
				start := time.Now()
				ctx, release := k.Hold(t.Context(), lease.Lease{Occurrence: "j@1", Token: 1}, start, short, start.Add(ahead))
				defer release()
				at, cause, lost := lostAt(ctx, start, 2*leaseFor)
				calls := r.log()
				if want := ahead + (short-k.Margin()-ahead)/2; len(calls) == 0 || calls[0].at.Sub(start) != want {
					t.Fatalf("renewals %+v, want the first halfway from the start to the fence", calls)
				}
				if !fail {
					if lost {
						t.Errorf("run cancelled at %v (%v), want it kept", at, cause)
					}
					return
				}
				if want := short - k.Margin(); !lost || at != want || !errors.Is(cause, lease.ErrLost) {
					t.Errorf("run ended at %v (%v, ended %v), want fenced at %v", at, cause, lost, want)
				}
			})
		})
	}
}

// TestFenceFollowsRenewals: the context from Hold carries the lease's fence, which starts
// where the keeper would cancel the run and moves, with a signal, on every renewal.
func TestFenceFollowsRenewals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const l = 30 * time.Second
		r := &renewer{}
		k := lease.New(r, lease.Config{Lease: l})
		stop := run(t, k)
		defer stop()
		acquired := time.Now()
		ctx, release := k.Hold(t.Context(), occ, acquired, full, time.Time{})
		defer release()
		f, ok := lease.FenceOf(ctx)
		if !ok {
			t.Fatal("FenceOf(Hold's context) found no fence")
		}
		if got, want := f.At(), acquired.Add(l-l/5); !got.Equal(want) {
			t.Errorf("fence at %v after the claim, want %v", got.Sub(acquired), want.Sub(acquired))
		}
		<-f.Moved()
		calls := r.log()
		if len(calls) != 1 {
			t.Fatalf("fence moved after %d renewals, want 1", len(calls))
		}
		if got, want := f.At(), calls[0].at.Add(l-l/5); !got.Equal(want) {
			t.Errorf("fence after the renewal at %v, want %v", got.Sub(acquired), want.Sub(acquired))
		}
	})
}

func TestNoHandlerFence(t *testing.T) {
	k := lease.New(&renewer{}, lease.Config{Lease: time.Minute, NoHandlerFence: true})
	ctx, release := k.Hold(t.Context(), occ, time.Now(), full, time.Time{})
	defer release()
	if _, ok := lease.FenceOf(ctx); ok {
		t.Error("FenceOf found a fence with NoHandlerFence set")
	}
}
