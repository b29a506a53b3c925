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
	send := func(ctx context.Context, job string, startIn time.Duration) <-chan error {
		errc := make(chan error, 1)
		go func() {
			_, err := h.Run(ctx, &pb.RunRequest{Job: job, ScheduledAt: timestamppb.New(due),
				StartAt: timestamppb.New(time.Now().Add(startIn))}, nil)
			record("result " + job)
			errc <- err
		}()
		return errc
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

	// b waits 300ms for its start; a, of the same instant, starts and finishes meanwhile.
	b := send(t.Context(), "b", 300*time.Millisecond)
	testwait.For(t, 10*time.Second, "b to join its burst", func() bool { return srv.pending(due) == 1 })
	a := send(t.Context(), "a", 0)
	wait(a, "a")
	wait(b, "b")
	mu.Lock()
	got := slices.Clone(events)
	mu.Unlock()
	if i, j := slices.Index(got, "start b"), slices.Index(got, "result a"); i < 0 || j < i {
		t.Errorf("events %q: a's result came before b started", got)
	}

	// c never starts (cancelled): d's result is not held for it.
	ctx, cancel := context.WithCancel(t.Context())
	c := send(ctx, "c", time.Hour)
	testwait.For(t, 10*time.Second, "c to join its burst", func() bool { return srv.pending(due) == 1 })
	d := send(t.Context(), "d", 0)
	testwait.For(t, 10*time.Second, "d to start", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(events, "start d")
	})
	cancel()
	wait(d, "d")
	<-c
}
