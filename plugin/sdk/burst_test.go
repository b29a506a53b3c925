package sdk

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// pending is how many runs sent ahead for scheduledAt have not started yet.
func (s *server) pending(scheduledAt time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.bursts[scheduledAt]; b != nil {
		return b.pending
	}
	return 0
}

// TestBurstResultsWaitForTheBurstsStarts: a run sent ahead that finishes while others of its
// scheduled instant have yet to start holds its result until they start (the CPU goes to
// the starts first), and is released when the others are abandoned instead.
func TestBurstResultsWaitForTheBurstsStarts(t *testing.T) {
	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	srv := &server{log: slog.New(slog.DiscardHandler), base: t.Context(), burstHold: time.Hour,
		h: HandlerFunc(func(_ context.Context, r *Run) (*Result, error) {
			record("start " + r.Job)
			return nil, nil
		})}
	h := connect(t, srv)
	due := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	sendAt := func(ctx context.Context, job string, startAt time.Time) <-chan error {
		errc := make(chan error, 1)
		go func() {
			_, err := h.Run(ctx, &pb.RunRequest{Job: job, ScheduledAt: timestamppb.New(due)}, startAt, nil)
			record("result " + job)
			errc <- err
		}()
		return errc
	}
	send := func(ctx context.Context, job string, startIn time.Duration) <-chan error {
		return sendAt(ctx, job, time.Now().Add(startIn))
	}
	wait := func(errc <-chan error, what string) {
		t.Helper()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no result (held for the hour-long burstHold?)", what)
		}
	}

	// b waits 300ms for its start; a, of the same instant and also sent ahead, starts and
	// finishes meanwhile. a's result is held until b starts, which is at bStart or later.
	// (b's handler may record its start after a's result arrived: the hold ends when b
	// starts, just before its handler is called.)
	bStart := time.Now().Add(300 * time.Millisecond)
	b := sendAt(t.Context(), "b", bStart)
	testwait.For(t, 10*time.Second, "b to join its burst", func() bool { return srv.pending(due) == 1 })
	a := send(t.Context(), "a", 100*time.Millisecond)
	wait(a, "a")
	if now := time.Now(); now.Before(bStart) {
		t.Errorf("a's result came %v before b's start", bStart.Sub(now))
	}
	wait(b, "b")
	mu.Lock()
	got := slices.Clone(events)
	mu.Unlock()
	if !slices.Contains(got, "start b") || slices.Index(got, "start a") > slices.Index(got, "result a") {
		t.Errorf("events %q: want a started before its result, and b started", got)
	}

	// c never starts (cancelled): d's result is not held for it.
	ctx, cancel := context.WithCancel(t.Context())
	c := send(ctx, "c", time.Hour)
	testwait.For(t, 10*time.Second, "c to join its burst", func() bool { return srv.pending(due) == 1 })
	d := send(t.Context(), "d", 100*time.Millisecond)
	testwait.For(t, 10*time.Second, "d to start", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(events, "start d")
	})
	cancel()
	wait(d, "d")
	<-c
}
