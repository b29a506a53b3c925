package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// A run's live output goes to Redis in batches, from a goroutine of the run's own, so that
// neither the handler's output nor the run's completion waits for Redis.
const (
	// outputEvery is how long the first waiting line waits for company: a reader sees a line
	// this much later at most, and a chatty handler costs a few calls a second, not one a line.
	outputEvery = 200 * time.Millisecond
	// outputBatch lines are sent at once, without waiting for outputEvery.
	outputBatch = 100
	// outputBacklog is how many lines may wait while a batch is on its way; the next ones are
	// dropped, and counted in a marker line, rather than held in memory for a slow Redis.
	outputBacklog = 1000
	// outputEndWait bounds how long a run's end waits for its last lines to reach Redis
	// before it records its outcome anyway.
	outputEndWait = time.Second
)

// liveOutput sends one attempt's output lines to the occurrence's output stream
// (queue.AppendOutput). A run that writes no line costs nothing: the goroutine starts with
// the first line, and without it not even the end is written, because a reader learns that
// the run ended from the agenda (see internal/queue).
type liveOutput struct {
	w       OutputWriter
	occ     string
	attempt int
	log     *slog.Logger

	mu      sync.Mutex
	buf     []string
	dropped int  // lines not sent since the last marker
	ended   bool // end was called: lines that come later are not sent
	end     queue.Status
	final   bool
	ready   chan struct{} // a line waits (nil until the first line starts the sender)
	full    chan struct{} // a batch is full
	ending  chan struct{} // closed by end: send what is left, with the end marker
	done    chan struct{} // closed when the sender returns
	cancel  context.CancelFunc
	batches int // only the sender touches it
}

func newLiveOutput(w OutputWriter, occ string, attempt int, log *slog.Logger) *liveOutput {
	return &liveOutput{w: w, occ: occ, attempt: attempt, log: log}
}

// add queues line for the stream; the first line starts the sender, under ctx's values but
// not its cancellation: a run that timed out still gets its last lines out.
func (o *liveOutput) add(ctx context.Context, line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return
	}
	if o.ready == nil {
		o.ready, o.full = make(chan struct{}, 1), make(chan struct{}, 1)
		o.ending, o.done = make(chan struct{}), make(chan struct{})
		var sendCtx context.Context
		sendCtx, o.cancel = context.WithCancel(context.WithoutCancel(ctx))
		go o.send(sendCtx)
	}
	if len(o.buf) >= outputBacklog {
		o.dropped++
		return
	}
	o.buf = append(o.buf, line)
	signal(o.ready)
	if len(o.buf) >= outputBatch {
		signal(o.full)
	}
}

// signal wakes whoever waits on c, if nobody did yet.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// finish marks the attempt's end with its run's status (final: no other attempt follows),
// after the lines still waiting, and returns once they reached Redis or outputEndWait has
// passed: the run's record must not wait long for its live output.
func (o *liveOutput) finish(status queue.Status, final bool) {
	o.mu.Lock()
	o.ended, o.end, o.final = true, status, final
	started := o.ready != nil
	o.mu.Unlock()
	if !started {
		return
	}
	close(o.ending)
	t := time.NewTimer(outputEndWait)
	defer t.Stop()
	select {
	case <-o.done:
	case <-t.C:
		o.log.Debug("live output: the last lines did not reach Redis in time", "wait", outputEndWait)
	}
	o.cancel()
	<-o.done
}

// send is the run's sender: it sends waiting lines once they waited outputEvery or fill a
// batch, and the rest with the end marker at the end.
func (o *liveOutput) send(ctx context.Context) {
	defer close(o.done)
	t := time.NewTimer(outputEvery)
	t.Stop()
	for {
		select {
		case <-o.ready:
		case <-o.ending:
			o.flush(ctx, true)
			return
		case <-ctx.Done():
			return
		}
		t.Reset(outputEvery)
		select {
		case <-t.C:
		case <-o.full:
			t.Stop()
		case <-o.ending:
			o.flush(ctx, true)
			return
		case <-ctx.Done():
			return
		}
		o.flush(ctx, false)
	}
}

// flush sends the waiting lines, a marker for those dropped since the last one, and with
// last the attempt's end. Lines that could not be sent count as dropped.
func (o *liveOutput) flush(ctx context.Context, last bool) {
	o.mu.Lock()
	lines, dropped := o.buf, o.dropped
	o.buf, o.dropped = nil, 0
	out := queue.Output{Occurrence: o.occ, Attempt: o.attempt, Lines: lines}
	if last {
		out.End, out.Final = o.end, o.final
	}
	o.mu.Unlock()
	if dropped > 0 {
		out.Lines = append(out.Lines, fmt.Sprintf("[%d lines dropped]", dropped))
	}
	if len(out.Lines) == 0 && !last {
		return
	}
	o.batches++
	out.Batch = o.batches
	if err := o.w.AppendOutput(ctx, out); err != nil {
		o.mu.Lock()
		o.dropped += dropped + len(lines)
		o.mu.Unlock()
		o.log.Debug("live output not written", "lines", len(lines), "err", err)
	}
}
