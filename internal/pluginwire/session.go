package pluginwire

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cronfleet/cronfleet/internal/lease"
	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
	"github.com/cronfleet/cronfleet/internal/workers"
)

// MaxMessage is the largest message either end of a session sends: gRPC's default limit
// for a message received. All runs of a plugin process share one stream, and gRPC ends a
// stream on a message it cannot send or receive, so each end checks its messages first
// and fails only the run whose message it is (see ErrUnsendable).
const MaxMessage = 4 << 20

// ErrUnsendable is a run whose request cannot be sent: over MaxMessage, or with a string
// that is not UTF-8 (protobuf's rule). It was not sent, and sending it again cannot help.
var ErrUnsendable = errors.New("pluginwire: run request cannot be sent")

// errSessionEnded is a run that found its session ended before it was sent.
var errSessionEnded = errors.New("pluginwire: session ended")

// ErrFenced is the cancellation cause of a run that the plugin stopped by itself at its
// fence (RunRequest.fence_monotonic_ns): the host did not renew the run's lease in time,
// because it is frozen, cut off from Redis, or gone.
var ErrFenced = errors.New("the run's lease was not renewed before its fence (the runner is frozen, cut off or gone): " +
	"the handler is stopped before another node may take the occurrence over")

// session is the host's end of one Session stream: it sends runs and cancellations and
// hands each run's events to it. The reader goroutine it starts is its own; it ends when
// the stream does (the plugin process went away, or the connection was closed).
type session struct {
	stream     pb.Handler_SessionClient
	cancel     context.CancelFunc // ends the stream
	readerDone chan struct{}

	sendMu sync.Mutex // grpc streams allow one Send at a time

	mu   sync.Mutex
	next uint64
	runs map[uint64]*sessionRun // nil once the stream ended
	err  error                  // why the stream ended
}

// sessionRun is one run in flight on a session.
type sessionRun struct {
	done chan sessionEnd // the run's end, sent once

	mu       sync.Mutex
	output   func(string)
	returned bool // run returned: output is not called any more
}

type sessionEnd struct {
	res *pb.RunResult
	err error
}

// line hands one output line to the run, unless its caller has returned.
func (r *sessionRun) line(l string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.returned && r.output != nil {
		r.output(l)
	}
}

func (r *sessionRun) finish() {
	r.mu.Lock()
	r.returned = true
	r.mu.Unlock()
}

// openSession starts a Session stream on c. The stream outlives the call that opens it
// (it carries every later run of the process), so it keeps ctx's values but not its end.
func openSession(ctx context.Context, c pb.HandlerClient) (*session, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stream, err := c.Session(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &session{stream: stream, cancel: cancel, runs: map[uint64]*sessionRun{}, readerDone: make(chan struct{})}
	go s.read()
	return s, nil
}

// read delivers events to their runs until the stream ends, then fails the runs left.
func (s *session) read() {
	defer close(s.readerDone)
	for {
		ev, err := s.stream.Recv()
		if err != nil {
			s.mu.Lock()
			s.err = err
			runs := s.runs
			s.runs = nil
			s.mu.Unlock()
			for _, r := range runs {
				r.done <- sessionEnd{err: err}
			}
			s.cancel()
			return
		}
		s.mu.Lock()
		r := s.runs[ev.GetId()]
		var end *sessionEnd
		switch e := ev.Event.(type) {
		case *pb.SessionEvent_Result:
			end = &sessionEnd{res: e.Result}
		case *pb.SessionEvent_Error:
			end = &sessionEnd{err: runErrorStatus(e.Error)}
		}
		if end != nil {
			delete(s.runs, ev.GetId())
		}
		s.mu.Unlock()
		switch {
		case r == nil: // a run given up on (cancelled): its late events are dropped
		case end != nil:
			r.done <- *end
		default:
			if out, ok := ev.Event.(*pb.SessionEvent_Output); ok {
				r.line(out.Output)
			}
		}
	}
}

// ended reports whether the stream ended: a run sent now would never reach the plugin.
func (s *session) ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs == nil
}

// run sends req, not to start before startAt (zero: at once), and waits for its result.
// When ctx ends first it sends a cancellation and returns ctx's error in a Canceled or
// DeadlineExceeded status, as a cancelled gRPC call does. errSessionEnded means the stream
// had ended: nothing was sent. When ctx carries a lease's fence (lease.FenceOf), the run
// goes with it, and so does every move of it while the run lasts.
func (s *session) run(ctx context.Context, req *pb.RunRequest, startAt time.Time, output func(string)) (*pb.RunResult, error) {
	m := &pb.SessionRequest{Msg: &pb.SessionRequest_Run{Run: req}}
	if d, ok := ctx.Deadline(); ok {
		m.Deadline = timestamppb.New(d)
	}
	if err := sendable(m); err != nil {
		return nil, err
	}
	r := &sessionRun{output: output, done: make(chan sessionEnd, 1)}
	defer r.finish()
	s.mu.Lock()
	if s.runs == nil {
		s.mu.Unlock()
		return nil, errSessionEnded
	}
	s.next++
	m.Id = s.next
	s.runs[m.Id] = r
	s.mu.Unlock()

	fence, fenced := lease.FenceOf(ctx)
	var moved <-chan struct{} // nil without a fence: never ready
	if fenced {
		moved = fence.Moved()
		m.GetRun().FenceMonotonicNs = toMachine(fence.At())
	}
	if err := s.sendRun(m, startAt); err != nil {
		// The stream broke; the reader fails every run, this one included.
		end := <-r.done
		return nil, end.err
	}
	for {
		select {
		case end := <-r.done:
			return end.res, end.err
		case <-moved:
			// A failed send means the stream broke: the reader ends the run.
			s.send(&pb.SessionRequest{Id: m.Id, Msg: &pb.SessionRequest_FenceMonotonicNs{FenceMonotonicNs: toMachine(fence.At())}})
		case <-ctx.Done():
			return s.abandon(ctx, m.Id, r)
		}
	}
}

// abandon gives up on run id, whose ctx ended, unless its end arrived meanwhile; the
// plugin is told to cancel it.
func (s *session) abandon(ctx context.Context, id uint64, r *sessionRun) (*pb.RunResult, error) {
	s.mu.Lock()
	_, inFlight := s.runs[id]
	delete(s.runs, id)
	s.mu.Unlock()
	if !inFlight {
		// Its end arrived meanwhile (or the stream broke): the reader is handing it over.
		end := <-r.done
		return end.res, end.err
	}
	s.send(&pb.SessionRequest{Id: id, Msg: &pb.SessionRequest_Cancel{Cancel: true}})
	return nil, status.FromContextError(ctx.Err()).Err()
}

// send sends m, a message about a run already sent; an error means the stream broke, which
// the reader handles.
func (s *session) send(m *pb.SessionRequest) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	_ = s.stream.Send(m)
}

// sendRun sends m, with startAt as an instant of the machine's monotonic clock (see
// clock.go).
func (s *session) sendRun(m *pb.SessionRequest, startAt time.Time) error {
	if !startAt.IsZero() {
		m.GetRun().StartAtMonotonicNs = toMachine(startAt)
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(m)
}

// sendable checks what gRPC would refuse to send, and end the stream for: a message over
// MaxMessage, or a string that is not UTF-8. Settings are bytes and go as they are.
func sendable(m *pb.SessionRequest) error {
	req := m.GetRun()
	for _, f := range []string{req.GetJob(), req.GetOccurrenceId(), req.GetNode()} {
		if !utf8.ValidString(f) {
			return fmt.Errorf("%w: %q is not UTF-8", ErrUnsendable, f)
		}
	}
	// Room for the start and the fence, which are set as the request is sent.
	if n := proto.Size(m) + 32; n > MaxMessage {
		return fmt.Errorf("%w: %d bytes, over the limit of %d", ErrUnsendable, n, MaxMessage)
	}
	return nil
}

// close ends the stream and waits for the reader.
func (s *session) close() {
	s.cancel()
	<-s.readerDone
}

// serveSession is the plugin's end of a Session stream: every run in its own goroutine,
// under a context that its cancel message, its deadline, its fence or the stream's end
// cancels.
func serveSession(impl Handler, stream pb.Handler_SessionServer) error {
	var (
		sendMu sync.Mutex
		mu     sync.Mutex
		runsOn = workers.New() // a run goes deep: see package workers
	)
	runs := map[uint64]*servedRun{}
	send := func(ev *pb.SessionEvent) {
		sendMu.Lock()
		defer sendMu.Unlock()
		_ = stream.Send(ev) // fails only when the stream is gone, and then the runs are cancelled
	}
	defer runsOn.Wait()
	for {
		m, err := stream.Recv()
		if err != nil {
			mu.Lock()
			for _, r := range runs {
				r.cancel(nil)
			}
			mu.Unlock()
			return nil
		}
		id := m.GetId()
		switch msg := m.Msg.(type) {
		case *pb.SessionRequest_Cancel:
			mu.Lock()
			if r, ok := runs[id]; ok && msg.Cancel {
				r.cancel(nil)
			}
			mu.Unlock()
			continue
		case *pb.SessionRequest_FenceMonotonicNs:
			mu.Lock()
			if r, ok := runs[id]; ok {
				r.fence(msg.FenceMonotonicNs)
			}
			mu.Unlock()
			continue
		}
		req := m.GetRun()
		if req == nil {
			continue // a message of a later protocol revision
		}
		var startAt time.Time
		if ns := req.GetStartAtMonotonicNs(); ns != 0 {
			startAt = fromMachine(ns)
		}
		ctx, cancel := runContext(stream.Context(), m.GetDeadline())
		r := &servedRun{cancel: cancel}
		mu.Lock()
		runs[id] = r
		if ns := req.GetFenceMonotonicNs(); ns != 0 {
			r.fence(ns)
		}
		mu.Unlock()
		runsOn.Go(func() {
			defer func() {
				mu.Lock()
				delete(runs, id)
				r.stop()
				mu.Unlock()
				cancel(nil)
			}()
			res, err := runImpl(ctx, impl, req, startAt, func(line string) {
				send(&pb.SessionEvent{Id: id, Event: &pb.SessionEvent_Output{Output: sendableLine(line)}})
			})
			send(endEvent(id, res, err))
		})
	}
}

// servedRun is a run in flight on the plugin's end of a session; serveSession's lock
// guards it.
type servedRun struct {
	cancel context.CancelCauseFunc
	timer  *time.Timer // cancels the run at its fence; nil without one
}

// fence (re)sets the instant, on the machine's monotonic clock, at which the run is
// cancelled with ErrFenced. A fence that passed cancelled the run for good: a later
// renewal cannot undo that, and needs not, since the host cancels it at the same instant.
func (r *servedRun) fence(ns int64) {
	d := time.Until(fromMachine(ns))
	if r.timer == nil {
		r.timer = time.AfterFunc(d, func() { r.cancel(ErrFenced) })
		return
	}
	r.timer.Reset(d)
}

// stop stops the fence's timer: the run ended.
func (r *servedRun) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// maxLine bounds an output line as sent, well within MaxMessage.
const maxLine = MaxMessage / 4

// sendableLine is line as it can be sent: cut to maxLine, and with what is not UTF-8
// replaced, so that one run's output cannot end the stream that all runs share.
func sendableLine(line string) string {
	if len(line) > maxLine {
		n := maxLine
		for n > 0 && !utf8.RuneStart(line[n]) {
			n--
		}
		line = line[:n] + "…"
	}
	return validUTF8(line)
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// endEvent is the event that ends run id: its result, or its error as a gRPC status. A
// result that could not be sent (over MaxMessage) becomes a RESOURCE_EXHAUSTED error, and
// what is not UTF-8 in its strings is replaced: either would end the shared stream.
func endEvent(id uint64, res *pb.RunResult, err error) *pb.SessionEvent {
	if err == nil {
		res.Message, res.Output, res.Error = validUTF8(res.GetMessage()), validUTF8(res.GetOutput()), validUTF8(res.GetError())
		for k, v := range res.GetMetadata() {
			if vk, vv := validUTF8(k), validUTF8(v); vk != k || vv != v {
				delete(res.Metadata, k)
				res.Metadata[vk] = vv
			}
		}
		ev := &pb.SessionEvent{Id: id, Event: &pb.SessionEvent_Result{Result: res}}
		if n := proto.Size(ev); n <= MaxMessage {
			return ev
		}
		err = status.Errorf(codes.ResourceExhausted, "the run's result of %d bytes is over the limit of %d", proto.Size(ev), MaxMessage)
	}
	st := status.Convert(err)
	return &pb.SessionEvent{Id: id, Event: &pb.SessionEvent_Error{Error: &pb.RunError{Code: int32(st.Code()), Message: validUTF8(st.Message())}}}
}

// runErrorStatus turns an error event back into the status the plugin returned.
func runErrorStatus(e *pb.RunError) error {
	return status.Error(codes.Code(e.GetCode()), e.GetMessage())
}

// runContext is a run's context on the plugin's side: the stream's, with the run's
// deadline if it has one.
func runContext(stream context.Context, deadline *timestamppb.Timestamp) (context.Context, context.CancelCauseFunc) {
	ctx := stream
	if deadline != nil {
		// The deadline's timer goes with the run's context: cancel releases both.
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(stream, deadline.AsTime())
		ctx, cancel := context.WithCancelCause(ctx)
		return ctx, func(cause error) { cancel(cause); stop() }
	}
	return context.WithCancelCause(ctx)
}

// session returns the client's open session, opening one if there is none or the last one
// ended (its plugin process is the same, so a new stream is worth a try).
func (c *client) session(ctx context.Context) (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil && !c.sess.ended() {
		return c.sess, nil
	}
	s, err := openSession(ctx, c.c)
	if err != nil {
		return nil, err
	}
	c.sess = s
	return s, nil
}

// Close ends the client's session, if any, and waits for its reader.
func (c *client) Close() {
	c.mu.Lock()
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	if s != nil {
		s.close()
	}
}
