package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/testwait"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// outputs is an OutputWriter that keeps what it is sent; block, if set, holds each call
// until it is closed or the call's context ends.
type outputs struct {
	mu    sync.Mutex
	got   []queue.Output
	block chan struct{}
}

func (w *outputs) AppendOutput(ctx context.Context, o queue.Output) error {
	if w.block != nil {
		select {
		case <-w.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, o)
	return nil
}

func (w *outputs) sent() []queue.Output {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]queue.Output(nil), w.got...)
}

func lines(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// TestLiveOutputBatches: lines wait outputEvery for company, a full batch goes at once, and
// the end goes with the last lines.
func TestLiveOutputBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &outputs{}
		o := newLiveOutput(w, "j@occ", 2, slog.New(slog.DiscardHandler))
		start := time.Now()
		o.add(t.Context(), "a")
		o.add(t.Context(), "b")
		synctest.Wait()
		if got := w.sent(); len(got) != 0 {
			t.Fatalf("sent %+v at once, want the lines to wait %v", got, outputEvery)
		}
		time.Sleep(outputEvery) // moves the bubble's clock
		synctest.Wait()
		want := []queue.Output{{Occurrence: "j@occ", Attempt: 2, Batch: 1, Lines: []string{"a", "b"}}}
		if diff := cmp.Diff(want, w.sent()); diff != "" {
			t.Fatalf("after %v (-want +got):\n%s", outputEvery, diff)
		}

		for _, l := range lines("x", outputBatch) {
			o.add(t.Context(), l)
		}
		synctest.Wait()
		want = append(want, queue.Output{Occurrence: "j@occ", Attempt: 2, Batch: 2, Lines: lines("x", outputBatch)})
		if diff := cmp.Diff(want, w.sent()); diff != "" {
			t.Fatalf("a full batch (-want +got):\n%s", diff)
		}

		o.add(t.Context(), "last")
		o.finish(queue.StatusRetrying, false)
		o.add(t.Context(), "after the end")
		want = append(want, queue.Output{Occurrence: "j@occ", Attempt: 2, Batch: 3, Lines: []string{"last"}, End: queue.StatusRetrying})
		if diff := cmp.Diff(want, w.sent()); diff != "" {
			t.Errorf("the end (-want +got):\n%s", diff)
		}
		if took := time.Since(start); took != outputEvery {
			t.Errorf("took %v, want %v: neither a full batch nor the end waits", took, outputEvery)
		}
	})
}

// TestLiveOutputSilentRunCostsNothing: a run without output starts no goroutine and writes
// nothing, not even its end.
func TestLiveOutputSilentRunCostsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &outputs{}
		o := newLiveOutput(w, "j@occ", 1, slog.New(slog.DiscardHandler))
		o.finish(queue.StatusSucceeded, true)
		if got := w.sent(); len(got) != 0 {
			t.Errorf("a silent run sent %+v", got)
		}
	})
}

// TestLiveOutputDropsUnderBackPressure: while Redis is slow, lines beyond the backlog are
// dropped, and a marker says how many, where they were.
func TestLiveOutputDropsUnderBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &outputs{block: make(chan struct{})}
		o := newLiveOutput(w, "j@occ", 1, slog.New(slog.DiscardHandler))
		o.add(t.Context(), "first")
		time.Sleep(outputEvery)
		synctest.Wait() // the first batch is on its way, and stuck
		for _, l := range lines("y", outputBacklog+7) {
			o.add(t.Context(), l)
		}
		o.add(t.Context(), "ignored too")
		close(w.block)
		synctest.Wait()
		o.finish(queue.StatusSucceeded, true)
		got := w.sent()
		if len(got) != 3 {
			t.Fatalf("sent %d batches, want 3 (first, the backlog with its marker, the end)", len(got))
		}
		want := append(lines("y", outputBacklog), "[8 lines dropped]")
		if diff := cmp.Diff(want, got[1].Lines); diff != "" {
			t.Errorf("backlog batch (-want +got):\n%s", diff)
		}
		if got[2].End != queue.StatusSucceeded || !got[2].Final || len(got[2].Lines) != 0 {
			t.Errorf("last batch %+v, want only the final end", got[2])
		}
	})
}

// TestLiveOutputEndWaitIsBounded: a Redis that does not answer holds a run's end for
// outputEndWait, no longer.
func TestLiveOutputEndWaitIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &outputs{block: make(chan struct{})} // never closed
		o := newLiveOutput(w, "j@occ", 1, slog.New(slog.DiscardHandler))
		o.add(t.Context(), "stuck")
		start := time.Now()
		o.finish(queue.StatusFailed, true)
		if took := time.Since(start); took != outputEndWait {
			t.Errorf("finish took %v, want %v", took, outputEndWait)
		}
	})
}

// TestLiveOutputWhileRunning: on a real Redis, a reader that knows only the occurrence id
// sees a running handler's line before the handler ends, and then the end.
func TestLiveOutputWhileRunning(t *testing.T) {
	t.Parallel()
	f := newFleet(t, "live", `
job "talk" {
  schedule = "* * * * * *"
  handler "x" {}
}`)
	running := make(chan string, 1) // the occurrence of the first run
	release := make(chan struct{})
	h := &handlers{fn: func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
		select {
		case running <- r.OccurrenceID:
		default:
			return nil, nil // only the first run is held
		}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return nil, nil
	}}
	f.node("a", h, nil)

	var occ string
	select {
	case occ = <-running:
	case <-time.After(30 * time.Second):
		t.Fatal("no run started")
	}
	reader := f.queue() // any node's
	var seen []queue.OutputLine
	cursor := ""
	testwait.For(t, 10*time.Second, "the running handler's line", func() bool {
		c, err := reader.ReadOutput(t.Context(), occ, cursor, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("ReadOutput: %v", err)
		}
		if c.End {
			t.Fatalf("output of %s ended while its handler still runs: %+v", occ, c)
		}
		seen, cursor = append(seen, c.Lines...), c.Cursor
		return len(seen) > 0
	})
	if seen[0].Text != "hello from "+occ || seen[0].Attempt != 1 {
		t.Errorf("first line %+v, want %q of attempt 1", seen[0], "hello from "+occ)
	}

	close(release)
	testwait.For(t, 10*time.Second, "the end of the output", func() bool {
		c, err := reader.ReadOutput(t.Context(), occ, cursor, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("ReadOutput: %v", err)
		}
		seen, cursor = append(seen, c.Lines...), c.Cursor
		return c.End
	})
	last := seen[len(seen)-1]
	if last.End != queue.StatusSucceeded || !last.Final || len(seen) != 2 {
		t.Errorf("output %+v, want the line then the final end", seen)
	}
	testwait.For(t, 10*time.Second, "the record of "+occ, func() bool { return hasRecord(f.history("talk"), occ) })
}

func hasRecord(recs []queue.Record, occ string) bool {
	for _, r := range recs {
		if r.Occurrence == occ {
			return true
		}
	}
	return false
}

// BenchmarkLiveOutputSilentRun is the live output's cost for a run without output, which is
// most runs of a busy fleet.
func BenchmarkLiveOutputSilentRun(b *testing.B) {
	w := &outputs{}
	log := slog.New(slog.DiscardHandler)
	b.ReportAllocs()
	for b.Loop() {
		o := newLiveOutput(w, "j@occ", 1, log)
		o.finish(queue.StatusSucceeded, true)
	}
	if len(w.sent()) != 0 {
		b.Fatal("a silent run wrote output")
	}
}
