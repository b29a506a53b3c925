package pluginwire_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/lease"
	"github.com/cronfleet/cronfleet/internal/pluginwire"
	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// switchRenewer renews every lease until down, then fails as an unreachable Redis does.
type switchRenewer struct {
	down    atomic.Bool
	renewed atomic.Int32
}

func (r *switchRenewer) Renew(_ context.Context, ls []lease.Lease) ([]lease.Verdict, error) {
	if r.down.Load() {
		return nil, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	}
	r.renewed.Add(1)
	v := make([]lease.Verdict, len(ls))
	for i := range v {
		v[i] = lease.Held
	}
	return v, nil
}

// TestPluginStopsTheRunAtItsFence: the plugin learns the run's fence, and each move of it,
// and cancels the handler there by itself, when its host is frozen and cancels nothing.
func TestPluginStopsTheRunAtItsFence(t *testing.T) {
	t.Parallel()
	const leaseTTL = 3 * time.Second
	const margin = leaseTTL / 5 // the keeper's default
	r := &switchRenewer{}
	k := lease.New(r, lease.Config{Lease: leaseTTL})
	keeperCtx, stopKeeper := context.WithCancel(t.Context())
	keeperDone := make(chan struct{})
	go func() { defer close(keeperDone); _ = k.Run(keeperCtx) }()
	t.Cleanup(func() { stopKeeper(); <-keeperDone })

	type end struct {
		at    time.Time
		cause error
	}
	started, ended := make(chan struct{}), make(chan end, 1)
	h := connect(t, handlerFunc(func(ctx context.Context, _ *pb.RunRequest, _ func(string)) (*pb.RunResult, error) {
		close(started)
		<-ctx.Done()
		ended <- end{time.Now(), context.Cause(ctx)}
		return nil, ctx.Err()
	}))

	runCtx, release := k.Hold(t.Context(), lease.Lease{Occurrence: "j@2026-12-06T00:00:00Z", Token: 1}, time.Now(), time.Hour, time.Time{})
	defer release()
	fence, ok := lease.FenceOf(runCtx)
	if !ok {
		t.Fatal("the context from Hold carries no fence")
	}
	// A frozen host: its keeper's cancellation never reaches the plugin, only the fences it
	// sent before.
	frozen := context.WithoutCancel(runCtx)
	hostDone := make(chan struct{})
	go func() { defer close(hostDone); _, _ = h.Run(frozen, &pb.RunRequest{Job: "j"}, time.Time{}, nil) }()
	<-started

	// Renewals move the fence: the run outlives its first lease and more.
	testwait.For(t, 4*leaseTTL, "four renewals", func() bool { return r.renewed.Load() >= 4 })
	select {
	case e := <-ended:
		t.Fatalf("handler cancelled (%v) while every renewal succeeded", e.cause)
	default:
	}

	r.down.Store(true)
	var e end
	select {
	case e = <-ended:
	case <-time.After(2 * leaseTTL):
		t.Fatal("the handler outlived its lease: the plugin did not stop it at the fence")
	}
	if !errors.Is(e.cause, pluginwire.ErrFenced) {
		t.Errorf("handler's cancellation cause = %v, want ErrFenced", e.cause)
	}
	last := fence.At() // no renewal succeeded since the handler ended: the last fence sent
	if e.at.Before(last) {
		t.Errorf("handler cancelled %v before its fence", last.Sub(e.at))
	}
	if expiry := last.Add(margin); !e.at.Before(expiry) {
		t.Errorf("handler cancelled %v after its lease expired, want before it", e.at.Sub(expiry))
	}
	<-hostDone
}
