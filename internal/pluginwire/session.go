package pluginwire

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// session is the host's end of one Session stream: it sends runs and cancellations and
// hands each run's events to it. The reader goroutine it starts is its own; it ends when
// the stream does (the plugin process went away, or the connection was closed).
type session struct {
	stream pb.Handler_SessionClient
	cancel context.CancelFunc // ends the stream

	sendMu sync.Mutex // grpc streams allow one Send at a time

	mu    sync.Mutex
	next  uint64
	runs  map[uint64]*sessionRun
	err   error         // why the stream ended; set once
	ended chan struct{} // closed when the reader returned
}

// sessionRun is one run in flight on a session.
type sessionRun struct {
	output func(string)
	done   chan sessionEnd // the run's end, sent once
}

type sessionEnd struct {
	res *pb.RunResult
	err error
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
	s := &session{stream: stream, cancel: cancel, runs: map[uint64]*sessionRun{}, ended: make(chan struct{})}
	go s.read()
	return s, nil
}

// read delivers events to their runs until the stream ends, then fails the runs left.
func (s *session) read() {
	defer close(s.ended)
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
			if out, ok := ev.Event.(*pb.SessionEvent_Output); ok && r.output != nil {
				r.output(out.Output)
			}
		}
	}
}

// send writes one message to the stream.
func (s *session) send(m *pb.SessionRequest) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(m)
}

// run sends req and waits for its result. When ctx ends first it sends a cancellation and
// returns ctx's error in a Canceled or DeadlineExceeded status, as a cancelled gRPC call
// does.
func (s *session) run(ctx context.Context, req *pb.RunRequest, output func(string)) (*pb.RunResult, error) {
	r := &sessionRun{output: output, done: make(chan sessionEnd, 1)}
	s.mu.Lock()
	if s.runs == nil {
		err := s.err
		s.mu.Unlock()
		return nil, err
	}
	s.next++
	id := s.next
	s.runs[id] = r
	s.mu.Unlock()

	if err := s.send(runMessage(ctx, id, req)); err != nil {
		// The stream broke; the reader fails every run, this one included.
		end := <-r.done
		return nil, end.err
	}
	select {
	case end := <-r.done:
		return end.res, end.err
	case <-ctx.Done():
		s.mu.Lock()
		_, inFlight := s.runs[id]
		delete(s.runs, id)
		s.mu.Unlock()
		if !inFlight {
			// Its end arrived meanwhile (or the stream broke): the reader is handing it over.
			end := <-r.done
			return end.res, end.err
		}
		_ = s.send(&pb.SessionRequest{Id: id, Msg: &pb.SessionRequest_Cancel{Cancel: true}})
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// close ends the stream and waits for the reader.
func (s *session) close() {
	s.cancel()
	<-s.ended
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
			res, err := runImpl(ctx, impl, req, func(line string) {
				send(&pb.SessionEvent{Id: id, Event: &pb.SessionEvent_Output{Output: line}})
			})
			send(endEvent(id, res, err))
		})
	}
}

// runMessage is the message that sends req as run id, with ctx's deadline.
func runMessage(ctx context.Context, id uint64, req *pb.RunRequest) *pb.SessionRequest {
	m := &pb.SessionRequest{Id: id, Msg: &pb.SessionRequest_Run{Run: req}}
	if d, ok := ctx.Deadline(); ok {
		m.Deadline = timestamppb.New(d)
	}
	return m
}

// endEvent is the event that ends run id: its result, or its error as a gRPC status.
func endEvent(id uint64, res *pb.RunResult, err error) *pb.SessionEvent {
	if err != nil {
		st := status.Convert(err)
		return &pb.SessionEvent{Id: id, Event: &pb.SessionEvent_Error{Error: &pb.RunError{Code: int32(st.Code()), Message: st.Message()}}}
	}
	return &pb.SessionEvent{Id: id, Event: &pb.SessionEvent_Result{Result: res}}
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
	if c.sess != nil {
		select {
		case <-c.sess.ended:
			c.sess = nil
		default:
			return c.sess, nil
		}
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
