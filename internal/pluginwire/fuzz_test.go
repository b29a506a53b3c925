package pluginwire

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// The session's two ends are fuzzed on the messages the other end sends, as bytes that
// proto.Unmarshal takes (three per input, enough for a run's output, its end and what
// comes after it), over a fake stream: the session's own reader on the host's side,
// serveSession on the plugin's.

// fuzzRuns are the ids of the runs in flight in FuzzSessionEvents: events name them, or
// others.
const fuzzRuns = 3

// marshal is proto.Marshal for seeds.
func marshal(f *testing.F, m proto.Message) []byte {
	f.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// clientStream is the host's end of a Session stream that receives events and then ends.
type clientStream struct {
	pb.Handler_SessionClient // nil: the reader only receives
	events                   [][]byte
}

func (s *clientStream) Recv() (*pb.SessionEvent, error) {
	for len(s.events) > 0 {
		var ev pb.SessionEvent
		err := proto.Unmarshal(s.events[0], &ev)
		s.events = s.events[1:]
		if err == nil { // gRPC ends the stream on a message it cannot decode; skip it here
			return &ev, nil
		}
	}
	return nil, io.EOF
}

// runLog is what one run in flight on a session got.
type runLog struct {
	lines []string
	end   sessionEnd
}

// readEvents has a session with runs 1 to fuzzRuns in flight read events, and returns
// what each run got.
func readEvents(events ...[]byte) map[uint64]*runLog {
	s := &session{stream: &clientStream{events: events}, cancel: func() {}, runs: map[uint64]*sessionRun{},
		readerDone: make(chan struct{})}
	logs := map[uint64]*runLog{}
	runs := map[uint64]*sessionRun{} // the reader forgets the runs that ended
	for id := uint64(1); id <= fuzzRuns; id++ {
		l := &runLog{}
		logs[id] = l
		runs[id] = &sessionRun{done: make(chan sessionEnd, 1), output: func(line string) { l.lines = append(l.lines, line) }}
		s.runs[id] = runs[id]
	}
	s.read()
	for id, r := range runs {
		logs[id].end = <-r.done
	}
	return logs
}

// FuzzSessionEvents feeds events to the host's end of a session (session.read). Each run
// in flight gets the output lines of its id up to its first end, and that end (its result
// or its error); a run without one fails with the stream's end; events of other ids are
// dropped. An end and an output line as the plugin's end sends them (endEvent,
// sendableLine), whatever the handler returned, are sendable and arrive as sent, with what
// is not UTF-8 replaced.
func FuzzSessionEvents(f *testing.F) {
	out := marshal(f, &pb.SessionEvent{Id: 1, Event: &pb.SessionEvent_Output{Output: "line"}})
	res := marshal(f, &pb.SessionEvent{Id: 1, Event: &pb.SessionEvent_Result{Result: &pb.RunResult{Message: "m", Metadata: map[string]string{"k": "v"}, HasError: true, Error: "e"}}})
	fail := marshal(f, &pb.SessionEvent{Id: 2, Event: &pb.SessionEvent_Error{Error: &pb.RunError{Code: int32(codes.Aborted), Message: "shutting down"}}})
	f.Add(out, res, fail, uint64(1), "m", "k", "v", "out", "err", true, true, uint32(codes.Unknown), "line", false)
	f.Add(res, out, marshal(f, &pb.SessionEvent{Id: 3}), uint64(9), "\xff", "k\xfe", "v\xfd", "", "", false, false, uint32(0), "caf\xe9", true)
	f.Add([]byte{}, []byte{0x08}, fail, uint64(0), "", "", "", "", "\xc3", true, false, uint32(1<<31), strings.Repeat("é", 10), true)
	f.Fuzz(func(t *testing.T, ev1, ev2, ev3 []byte, id uint64, message, key, value, output, errText string,
		hasError, permanent bool, code uint32, line string, asError bool) {
		logs := readEvents(ev1, ev2, ev3)
		want := wantLogs(ev1, ev2, ev3)
		for id, l := range logs {
			w := want[id]
			if diff := cmp.Diff(w.lines, l.lines); diff != "" {
				t.Fatalf("run %d: output (-want +got):\n%s", id, diff)
			}
			if diff := cmp.Diff(w.end.res, l.end.res, protocmp.Transform()); diff != "" {
				t.Fatalf("run %d: result (-want +got):\n%s", id, diff)
			}
			if (w.end.err == nil) != (l.end.err == nil) || w.end.err != nil && w.end.err.Error() != l.end.err.Error() {
				t.Fatalf("run %d: error %v, want %v", id, l.end.err, w.end.err)
			}
		}

		// The round trip: a run's output line and end, as the plugin's end sends them.
		var (
			ev  *pb.SessionEvent
			err error
			r   = &pb.RunResult{Message: message, Metadata: map[string]string{key: value}, Output: output, Error: errText,
				HasError: hasError, Permanent: permanent}
		)
		if asError {
			err = status.Error(codes.Code(code), errText)
			if code == 0 {
				err = errors.New(errText)
			}
			ev = endEvent(id, nil, err)
		} else {
			ev = endEvent(id, proto.Clone(r).(*pb.RunResult), nil)
		}
		sent := sendableLine(line)
		lineEv := &pb.SessionEvent{Id: id, Event: &pb.SessionEvent_Output{Output: sent}}
		b1, err1 := proto.Marshal(lineEv)
		b2, err2 := proto.Marshal(ev)
		if err1 != nil || err2 != nil {
			t.Fatalf("the plugin's end sends what cannot be sent: line %q: %v; end %v: %v", line, err1, ev, err2)
		}
		logs = readEvents(b1, b2)
		got, ok := logs[id]
		if !ok {
			return // not a run in flight: dropped, as checked above
		}
		if !utf8.ValidString(sent) || len(sent) > maxLine+len("…") || utf8.ValidString(line) && len(line) <= maxLine && sent != line {
			t.Fatalf("line %q sent as %q", line, sent)
		}
		if diff := cmp.Diff([]string{sent}, got.lines); diff != "" {
			t.Fatalf("output (-sent +got):\n%s", diff)
		}
		if asError {
			st := status.Convert(err)
			if got.end.res != nil || status.Code(got.end.err) != st.Code() || status.Convert(got.end.err).Message() != validUTF8(st.Message()) {
				t.Fatalf("the plugin's error %v arrived as %v, %v", err, got.end.res, got.end.err)
			}
			return
		}
		r.Message, r.Output, r.Error = validUTF8(message), validUTF8(output), validUTF8(errText)
		r.Metadata = map[string]string{validUTF8(key): validUTF8(value)}
		if diff := cmp.Diff(r, got.end.res, protocmp.Transform()); diff != "" || got.end.err != nil {
			t.Fatalf("result (-sent +got):\n%s\nerror %v", diff, got.end.err)
		}
	})
}

// wantLogs is what each run in flight should get from events, read independently of the
// session: its output until its first end, and that end (or the stream's).
func wantLogs(events ...[]byte) map[uint64]*runLog {
	want := map[uint64]*runLog{}
	ended := map[uint64]bool{}
	for id := uint64(1); id <= fuzzRuns; id++ {
		want[id] = &runLog{}
	}
	for _, b := range events {
		var ev pb.SessionEvent
		if proto.Unmarshal(b, &ev) != nil {
			continue
		}
		w, ok := want[ev.GetId()]
		if !ok || ended[ev.GetId()] {
			continue
		}
		switch e := ev.GetEvent().(type) {
		case *pb.SessionEvent_Output:
			w.lines = append(w.lines, e.Output)
		case *pb.SessionEvent_Result:
			w.end, ended[ev.GetId()] = sessionEnd{res: e.Result}, true
		case *pb.SessionEvent_Error:
			w.end, ended[ev.GetId()] = sessionEnd{err: status.Error(codes.Code(e.Error.GetCode()), e.Error.GetMessage())}, true
		}
	}
	for id, w := range want {
		if !ended[id] {
			w.end.err = io.EOF
		}
	}
	return want
}

// serverStream is the plugin's end of a Session stream that receives requests, then ends
// once the handler got every run (so that the stream's end, which cancels the runs left,
// comes after what the requests did to them).
type serverStream struct {
	pb.Handler_SessionServer // nil: serveSession only receives, sends and asks for the context
	ctx                      context.Context
	reqs                     [][]byte
	got                      []*pb.SessionRequest // what Recv returned
	wait                     func()               // until the handler got every run

	mu   sync.Mutex
	sent []*pb.SessionEvent
}

func (s *serverStream) Context() context.Context { return s.ctx }

func (s *serverStream) Recv() (*pb.SessionRequest, error) {
	for len(s.reqs) > 0 {
		var m pb.SessionRequest
		err := proto.Unmarshal(s.reqs[0], &m)
		s.reqs = s.reqs[1:]
		if err == nil {
			s.got = append(s.got, &m)
			return &m, nil
		}
	}
	s.wait()
	return nil, io.EOF
}

func (s *serverStream) Send(ev *pb.SessionEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, ev)
	return nil
}

// started is one run as the handler got it.
type started struct {
	req      *pb.RunRequest
	startAt  time.Time
	deadline time.Time // zero: none
	fenced   bool      // its context ended at its fence
}

// recorder is a handler that records its runs.
type recorder struct {
	mu   sync.Mutex
	runs []started
	got  chan struct{} // a run recorded
}

func (r *recorder) Schema(context.Context) (*pb.SchemaResponse, error) {
	return &pb.SchemaResponse{}, nil
}
func (r *recorder) Check(context.Context, *pb.CheckRequest) (*pb.CheckResponse, error) {
	return &pb.CheckResponse{}, nil
}

// fenceWait bounds how long the recorder waits for a run whose fence passed to be fenced:
// the plugin's timer fires at once, unless a later fence moved it.
const fenceWait = 200 * time.Millisecond

func (r *recorder) Run(ctx context.Context, req *pb.RunRequest, startAt time.Time, _ func(string)) (*pb.RunResult, error) {
	if ns := req.GetFenceMonotonicNs(); ns != 0 && ns <= machineMonotonic() {
		t := time.NewTimer(fenceWait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	dl, _ := ctx.Deadline()
	r.mu.Lock()
	r.runs = append(r.runs, started{req: req, startAt: startAt, deadline: dl, fenced: errors.Is(context.Cause(ctx), ErrFenced)})
	r.mu.Unlock()
	r.got <- struct{}{}
	return &pb.RunResult{Message: req.GetJob()}, nil
}

// serve has serveSession take reqs, and returns the runs the handler got, what the stream
// received and the events sent back.
func serve(t *testing.T, reqs ...[]byte) ([]started, []*pb.SessionRequest, []*pb.SessionEvent) {
	t.Helper()
	runs := 0
	for _, b := range reqs {
		var m pb.SessionRequest
		if proto.Unmarshal(b, &m) == nil && m.GetRun() != nil {
			runs++
		}
	}
	rec := &recorder{got: make(chan struct{}, len(reqs))}
	stream := &serverStream{ctx: t.Context(), reqs: reqs, wait: func() {
		timeout := time.NewTimer(10 * time.Second)
		defer timeout.Stop()
		for range runs {
			select {
			case <-rec.got:
			case <-timeout.C:
				return // the check of the runs fails
			}
		}
	}}
	if err := serveSession(rec, stream); err != nil {
		t.Fatalf("serveSession: %v", err)
	}
	return rec.runs, stream.got, stream.sent
}

// FuzzSessionRequests feeds requests to the plugin's end of a session (serveSession).
// Every run request reaches the handler, once, with its deadline; with a start that is
// zero when none was sent, not after now when the one sent is not after the machine's
// monotonic now, and after now when it is well after; and fenced (its context ended with
// ErrFenced) when its fence had passed, not when it is well ahead. Every run sends one
// end. A run as the host's end sends it (session.run, sendRun) reaches the handler as
// sent, its start never earlier, fenced only when its fence has passed.
func FuzzSessionRequests(f *testing.F) {
	run := &pb.RunRequest{Job: "j", ScheduledAt: timestamppb.New(time.Date(2026, 11, 26, 15, 4, 5, 0, time.UTC)), Attempt: 1,
		OccurrenceId: "j@2026-11-26T15:04:05.000Z", Settings: []byte(`{}`), StartAtMonotonicNs: 1, FenceMonotonicNs: 1}
	req := marshal(f, &pb.SessionRequest{Id: 1, Msg: &pb.SessionRequest_Run{Run: run}, Deadline: timestamppb.New(time.Unix(1<<40, 0))})
	cancel := marshal(f, &pb.SessionRequest{Id: 1, Msg: &pb.SessionRequest_Cancel{Cancel: true}})
	move := marshal(f, &pb.SessionRequest{Id: 1, Msg: &pb.SessionRequest_FenceMonotonicNs{FenceMonotonicNs: 1 << 62}})
	f.Add(req, cancel, []byte{}, "job", "job@x", int64(time.Second), int64(time.Minute), true, int64(time.Hour), true)
	f.Add(cancel, req, move, "", "", int64(0), int64(-time.Hour), false, int64(-time.Second), true)
	f.Add(marshal(f, &pb.SessionRequest{Id: 3, Msg: &pb.SessionRequest_Run{Run: &pb.RunRequest{StartAtMonotonicNs: 1<<63 - 1, FenceMonotonicNs: 1<<63 - 1}},
		Deadline: &timestamppb.Timestamp{Seconds: -1 << 62, Nanos: -1}}), req, req, "é", "\xff", int64(-1), int64(1<<62), true, int64(0), false)
	f.Fuzz(func(t *testing.T, m1, m2, m3 []byte, job, occ string, startIn, deadlineIn int64, hasDeadline bool, fenceIn int64, hasFence bool) {
		before, monoBefore := time.Now(), machineMonotonic()
		runs, got, sent := serve(t, m1, m2, m3)
		monoAfter, after := machineMonotonic(), time.Now()
		want := 0
		for _, m := range got {
			if m.GetRun() != nil {
				want++
			}
		}
		if len(runs) != want || len(sent) < want {
			t.Fatalf("%d runs sent, the handler got %d, and %d events came back", want, len(runs), len(sent))
		}
		for _, r := range runs {
			var m *pb.SessionRequest
			alone := true // the only message of its id
			for _, g := range got {
				if g.GetRun() == r.req {
					m = g
				}
			}
			for _, g := range got {
				if m != nil && g != m && g.GetId() == m.GetId() {
					alone = false
				}
			}
			dl := m.GetDeadline()
			switch ns, fence := r.req.GetStartAtMonotonicNs(), r.req.GetFenceMonotonicNs(); {
			case m == nil:
				t.Fatalf("the handler got a run nobody sent: %v", r.req)
			case ns == 0 && !r.startAt.IsZero():
				t.Fatalf("a run to start at once got start %v", r.startAt)
			case ns != 0 && ns <= monoBefore && r.startAt.After(after):
				t.Fatalf("a run to start at %d ns, before the machine's %d, got start %v, after now (%v)", ns, monoBefore, r.startAt, after)
			case ns > monoAfter && ns-monoAfter > int64(time.Second) && !r.startAt.After(before):
				t.Fatalf("a run to start at %d ns, after the machine's %d, got start %v, not after %v", ns, monoAfter, r.startAt, before)
			case dl != nil && !r.deadline.Equal(dl.AsTime()), dl == nil && !r.deadline.IsZero():
				t.Fatalf("a run with deadline %v got %v", dl, r.deadline)
			case alone && fence != 0 && fence <= monoBefore && (dl == nil || dl.AsTime().After(after.Add(time.Minute))) && !r.fenced:
				t.Fatalf("a run with its fence at %d ns, before the machine's %d, was not fenced", fence, monoBefore)
			case alone && fence > monoAfter && fence-monoAfter > int64(time.Minute) && r.fenced:
				t.Fatalf("a run with its fence at %d ns, after the machine's %d, was fenced", fence, monoAfter)
			}
		}

		// The round trip: a run as the host's end sends it.
		ctx := t.Context()
		if hasDeadline {
			var stop context.CancelFunc
			ctx, stop = context.WithDeadline(ctx, time.Now().Add(time.Duration(deadlineIn)))
			defer stop()
		}
		startAt, fenceAt := time.Now().Add(time.Duration(startIn)), time.Now().Add(time.Duration(fenceIn))
		msg := &pb.SessionRequest{Id: 7, Msg: &pb.SessionRequest_Run{Run: &pb.RunRequest{Job: job, OccurrenceId: occ}}}
		if d, ok := ctx.Deadline(); ok {
			msg.Deadline = timestamppb.New(d)
		}
		if sendable(msg) != nil {
			return
		}
		msg.GetRun().StartAtMonotonicNs = toMachine(startAt)
		if hasFence {
			msg.GetRun().FenceMonotonicNs = toMachine(fenceAt)
		}
		b, err := proto.Marshal(msg)
		if err != nil {
			t.Fatalf("a sendable run does not encode: %v", err)
		}
		runs, _, sent = serve(t, b)
		if len(runs) != 1 || len(sent) != 1 || sent[0].GetId() != 7 || sent[0].GetResult().GetMessage() != job {
			t.Fatalf("run %v: the handler got %v, and %v came back", msg, runs, sent)
		}
		r := runs[0]
		d, ok := ctx.Deadline()
		if ok != !r.deadline.IsZero() || ok && !d.Equal(r.deadline) {
			t.Fatalf("a run with deadline %v got %v", d, r.deadline)
		}
		if far := 100 * 365 * 24 * time.Hour; startIn > int64(-far) && startIn < int64(far) {
			if r.startAt.Before(startAt) || r.startAt.Sub(startAt) > time.Minute {
				t.Fatalf("a run to start at %v got %v (%v later)", startAt, r.startAt, r.startAt.Sub(startAt))
			}
		}
		switch {
		case r.fenced && (!hasFence || fenceIn > int64(time.Minute)):
			t.Fatalf("a run with its fence %v ahead (set: %v) was fenced", time.Duration(fenceIn), hasFence)
		case !r.fenced && hasFence && fenceIn <= 0 && (!ok || time.Until(d) > time.Minute):
			t.Fatalf("a run whose fence passed %v ago was not fenced", -time.Duration(fenceIn))
		}
	})
}

// FuzzCheckVersion feeds go-plugin's start errors to CheckVersion: a version mismatch
// becomes a VersionError naming the plugin's version as go-plugin gave it; any other
// error comes back unchanged.
func FuzzCheckVersion(f *testing.F) {
	f.Add("Incompatible API version with plugin. Plugin version: 2, Client versions: [3]")
	f.Add("incompatible api version with plugin. plugin version: -99999999999999999999")
	f.Add("fork/exec /x: permission denied")
	f.Fuzz(func(t *testing.T, msg string) {
		in := errors.New(msg)
		err := CheckVersion(in)
		var ve *VersionError
		if !errors.As(err, &ve) {
			if err != in {
				t.Fatalf("CheckVersion(%q) = %v, want it unchanged", msg, err)
			}
			return
		}
		if ve.Host != ProtocolVersion || !strings.Contains(strings.ToLower(msg), "plugin version: ") ||
			!strings.Contains(strings.TrimLeft(msg, "-"), strings.TrimPrefix(strconv.Itoa(ve.Plugin), "-")) {
			t.Fatalf("CheckVersion(%q) = %+v", msg, ve)
		}
	})
}
