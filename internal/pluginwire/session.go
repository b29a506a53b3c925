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

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
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
// had ended: nothing was sent.
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

	if err := s.sendRun(m, startAt); err != nil {
		// The stream broke; the reader fails every run, this one included.
		end := <-r.done
		return nil, end.err
	}
	select {
	case end := <-r.done:
		return end.res, end.err
	case <-ctx.Done():
		s.mu.Lock()
		_, inFlight := s.runs[m.Id]
		delete(s.runs, m.Id)
		s.mu.Unlock()
		if !inFlight {
			// Its end arrived meanwhile (or the stream broke): the reader is handing it over.
			end := <-r.done
			return end.res, end.err
		}
		s.sendMu.Lock()
		_ = s.stream.Send(&pb.SessionRequest{Id: m.Id, Msg: &pb.SessionRequest_Cancel{Cancel: true}})
		s.sendMu.Unlock()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
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
	// Room for the start, which is set as the request is sent.
	if n := proto.Size(m) + 16; n > MaxMessage {
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
// under a context that its cancel message, its deadline or the stream's end cancels.
func serveSession(impl Handler, stream pb.Handler_SessionServer) error {
	var (
		sendMu sync.Mutex
		mu     sync.Mutex
		wg     sync.WaitGroup
	)
	cancels := map[uint64]context.CancelFunc{}
	send := func(ev *pb.SessionEvent) {
		sendMu.Lock()
		defer sendMu.Unlock()
		_ = stream.Send(ev) // fails only when the stream is gone, and then the runs are cancelled
	}
	defer wg.Wait()
	for {
		m, err := stream.Recv()
		if err != nil {
			mu.Lock()
			for _, cancel := range cancels {
				cancel()
			}
			mu.Unlock()
			return nil
		}
		id := m.GetId()
		if m.GetCancel() {
			mu.Lock()
			if cancel, ok := cancels[id]; ok {
				cancel()
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
		mu.Lock()
		cancels[id] = cancel
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(cancels, id)
				mu.Unlock()
				cancel()
			}()
			res, err := runImpl(ctx, impl, req, startAt, func(line string) {
				send(&pb.SessionEvent{Id: id, Event: &pb.SessionEvent_Output{Output: sendableLine(line)}})
			})
			send(endEvent(id, res, err))
		})
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
func runContext(stream context.Context, deadline *timestamppb.Timestamp) (context.Context, context.CancelFunc) {
	if deadline == nil {
		return context.WithCancel(stream)
	}
	return context.WithDeadline(stream, deadline.AsTime())
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
