package pluginwire_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cronfleet/cronfleet/internal/pluginwire"
	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// handlerFunc lets a test write its handler inline.
type handlerFunc func(ctx context.Context, req *pb.RunRequest, output func(string)) (*pb.RunResult, error)

func (f handlerFunc) Schema(context.Context) (*pb.SchemaResponse, error) {
	return &pb.SchemaResponse{Attributes: []*pb.Attribute{{Name: "a", Type: "string"}}}, nil
}

// Check finds a problem in settings "bad", and says it cannot check settings "old" the
// way a plugin without Check does.
func (f handlerFunc) Check(_ context.Context, req *pb.CheckRequest) (*pb.CheckResponse, error) {
	switch string(req.GetSettings()) {
	case "bad":
		return &pb.CheckResponse{Problems: []*pb.Problem{{Attribute: "a", Message: "is bad"}}}, nil
	case "old":
		return nil, status.Error(codes.Unimplemented, "method Check not implemented")
	}
	return &pb.CheckResponse{}, nil
}

func (f handlerFunc) Run(ctx context.Context, req *pb.RunRequest, _ time.Time, output func(string)) (*pb.RunResult, error) {
	return f(ctx, req, output)
}

// connect serves impl in process and returns the host's view of it.
func connect(t *testing.T, impl pluginwire.Handler) pluginwire.Client {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, pluginwire.PluginSet(impl))
	// Closing the client asks the server to stop (go-plugin's controller).
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(pluginwire.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := raw.(pluginwire.Client)
	if !ok {
		t.Fatalf("dispensed %T, want pluginwire.Client", raw)
	}
	t.Cleanup(h.Close)
	return h
}

func TestRoundTrip(t *testing.T) {
	req := &pb.RunRequest{
		Job:          "db-backup",
		ScheduledAt:  timestamppb.New(time.Date(2026, 11, 26, 15, 4, 5, 123e6, time.UTC)),
		Attempt:      2,
		FencingToken: 42,
		OccurrenceId: "db-backup@2026-11-26T15:04:05.123Z",
		Node:         "node-a",
		Settings:     []byte(`{"command":["true"]}`),
	}
	want := &pb.RunResult{
		Message:  "done",
		Metadata: map[string]string{"exit_code": "0"},
		Output:   "a\nb\n",
	}
	var got *pb.RunRequest
	h := connect(t, handlerFunc(func(_ context.Context, r *pb.RunRequest, output func(string)) (*pb.RunResult, error) {
		got = r
		output("a")
		output("b")
		return want, nil
	}))

	var lines []string
	res, err := h.Run(t.Context(), req, time.Time{}, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(req, got, protocmp.Transform()); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, res, protocmp.Transform()); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b"}, lines); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestCancellationReachesHandler(t *testing.T) {
	started := make(chan struct{})
	handlerErr := make(chan error, 1)
	h := connect(t, handlerFunc(func(ctx context.Context, _ *pb.RunRequest, _ func(string)) (*pb.RunResult, error) {
		close(started)
		<-ctx.Done()
		handlerErr <- ctx.Err()
		return nil, ctx.Err()
	}))

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.Run(ctx, &pb.RunRequest{Job: "j"}, time.Time{}, nil)
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; status.Code(err) != codes.Canceled {
		t.Errorf("host got %v, want code Canceled", err)
	}
	select {
	case err := <-handlerErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler ctx err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler ctx was not cancelled")
	}
}

func TestErrors(t *testing.T) {
	h := connect(t, handlerFunc(func(context.Context, *pb.RunRequest, func(string)) (*pb.RunResult, error) {
		return nil, status.Error(codes.FailedPrecondition, "boom")
	}))
	_, err := h.Run(t.Context(), &pb.RunRequest{}, time.Time{}, nil)
	if status.Code(err) != codes.FailedPrecondition || status.Convert(err).Message() != "boom" {
		t.Errorf("got %v, want FailedPrecondition boom", err)
	}

	// A handler-level failure travels inside the result.
	h = connect(t, handlerFunc(func(context.Context, *pb.RunRequest, func(string)) (*pb.RunResult, error) {
		return &pb.RunResult{HasError: true, Error: "exit code 3"}, nil
	}))
	res, err := h.Run(t.Context(), &pb.RunRequest{}, time.Time{}, nil)
	if err != nil || !res.GetHasError() || res.GetError() != "exit code 3" {
		t.Errorf("got %v, %v; want a result carrying the error", res, err)
	}
}

func TestSchemaAndPing(t *testing.T) {
	h := connect(t, handlerFunc(nil))
	res, err := h.Schema(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := &pb.SchemaResponse{Attributes: []*pb.Attribute{{Name: "a", Type: "string"}}}
	if diff := cmp.Diff(want, res, protocmp.Transform()); diff != "" {
		t.Errorf("schema (-want +got):\n%s", diff)
	}
	if err := h.Ping(t.Context()); err != nil {
		t.Errorf("ping: %v", err)
	}
}

func TestCheckVersion(t *testing.T) {
	goPluginErr := errors.New("incompatible API version with plugin. Plugin version: 2, Client versions: [3]")
	err := pluginwire.CheckVersion(goPluginErr)
	var ve *pluginwire.VersionError
	if !errors.As(err, &ve) || ve.Plugin != 2 || ve.Host != pluginwire.ProtocolVersion {
		t.Fatalf("CheckVersion = %#v, want a VersionError{2, %d}", err, pluginwire.ProtocolVersion)
	}
	want := "plugin speaks cronfleet plugin protocol version 2, this runner speaks version 3: rebuild the plugin against a plugin/sdk of protocol version 3"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	other := errors.New("fork/exec: no such file")
	if got := pluginwire.CheckVersion(other); got != other {
		t.Errorf("CheckVersion changed an unrelated error to %v", got)
	}
}

func TestCheck(t *testing.T) {
	h := connect(t, handlerFunc(nil))
	for _, tc := range []struct {
		settings string
		want     []*pb.Problem
	}{
		{"bad", []*pb.Problem{{Attribute: "a", Message: "is bad"}}},
		{"good", nil},
		// A plugin that predates Check has its settings checked by its schema only.
		{"old", nil},
	} {
		res, err := h.Check(t.Context(), &pb.CheckRequest{Settings: []byte(tc.settings)})
		if err != nil {
			t.Fatalf("Check(%s): %v", tc.settings, err)
		}
		if diff := cmp.Diff(tc.want, res.GetProblems(), protocmp.Transform()); diff != "" {
			t.Errorf("Check(%s) (-want +got):\n%s", tc.settings, diff)
		}
	}
}

// TestConcurrentRuns: concurrent runs on one session each get their own output, result
// or error status, and the run's deadline reaches the handler.
func TestConcurrentRuns(t *testing.T) {
	const n = 50
	var mu sync.Mutex
	started := 0
	all := make(chan struct{})
	h := connect(t, handlerFunc(func(ctx context.Context, r *pb.RunRequest, output func(string)) (*pb.RunResult, error) {
		if r.GetJob() == "refused" {
			return nil, status.Error(codes.Aborted, "shutting down")
		}
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("no deadline")
		}
		// Hold every run until all are running: they must be in flight at once.
		mu.Lock()
		if started++; started == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		output("line of " + r.GetJob())
		return &pb.RunResult{Message: "done " + r.GetJob()}, nil
	}))
	var wg sync.WaitGroup
	for i := range n {
		job := fmt.Sprintf("job-%d", i)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			var lines []string
			res, err := h.Run(ctx, &pb.RunRequest{Job: job}, time.Time{}, func(l string) { lines = append(lines, l) })
			if err != nil || res.GetMessage() != "done "+job || len(lines) != 1 || lines[0] != "line of "+job {
				t.Errorf("%s: %v, %v, %q", job, res, err, lines)
			}
		})
	}
	wg.Wait()
	if _, err := h.Run(t.Context(), &pb.RunRequest{Job: "refused"}, time.Time{}, nil); status.Code(err) != codes.Aborted {
		t.Errorf("refused run: err = %v, want code Aborted", err)
	}
}

// startImpl records the start instant each run arrives with.
type startImpl struct {
	handlerFunc
	got chan time.Time
}

func (s startImpl) Run(_ context.Context, _ *pb.RunRequest, startAt time.Time, _ func(string)) (*pb.RunResult, error) {
	s.got <- startAt
	return &pb.RunResult{}, nil
}

// TestStartIsNeverEarlier: a run's start crosses the process boundary as an instant of the
// machine's monotonic clock, and the instant the handler gets is never before the host's;
// no start means none.
func TestStartIsNeverEarlier(t *testing.T) {
	impl := startImpl{got: make(chan time.Time, 1)}
	h := connect(t, impl)
	for _, wait := range []time.Duration{time.Millisecond, 200 * time.Millisecond, time.Hour} {
		startAt := time.Now().Add(wait)
		if _, err := h.Run(t.Context(), &pb.RunRequest{}, startAt, nil); err != nil {
			t.Fatal(err)
		}
		if got := <-impl.got; got.Before(startAt) {
			t.Errorf("start %v ahead: the plugin got an instant %v before it", wait, startAt.Sub(got))
		}
	}
	if _, err := h.Run(t.Context(), &pb.RunRequest{}, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	if got := <-impl.got; !got.IsZero() {
		t.Errorf("a run to start at once arrived with start %v", got)
	}
}

// TestOneRunCannotEndTheSession: what gRPC would refuse to send (a string that is not
// UTF-8, a message over MaxMessage) ends a stream, and all runs of a plugin process share
// one. Each end checks its messages, so only the run at fault is affected, and the run
// that was in flight meanwhile completes.
func TestOneRunCannotEndTheSession(t *testing.T) {
	release := make(chan struct{})
	h := connect(t, handlerFunc(func(ctx context.Context, r *pb.RunRequest, output func(string)) (*pb.RunResult, error) {
		switch r.GetJob() {
		case "long":
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &pb.RunResult{Message: "done"}, nil
		case "latin-1":
			output("caf\xe9")
			return &pb.RunResult{Message: "\xff", Metadata: map[string]string{"k\xfe": "v\xfd"}}, nil
		case "huge":
			return &pb.RunResult{Output: strings.Repeat("x", pluginwire.MaxMessage+1)}, nil
		}
		return &pb.RunResult{}, nil
	}))
	long := make(chan error, 1)
	go func() {
		res, err := h.Run(t.Context(), &pb.RunRequest{Job: "long"}, time.Time{}, nil)
		if err == nil && res.GetMessage() != "done" {
			err = fmt.Errorf("result %v", res)
		}
		long <- err
	}()

	var lines []string
	res, err := h.Run(t.Context(), &pb.RunRequest{Job: "latin-1"}, time.Time{}, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Errorf("latin-1 run: %v, want its result with what is not UTF-8 replaced", err)
	} else if diff := cmp.Diff([]string{"caf\uFFFD"}, lines); diff != "" || res.GetMessage() != "\uFFFD" || res.GetMetadata()["k\uFFFD"] != "v\uFFFD" {
		t.Errorf("latin-1 run: result %v, output (-want +got):\n%s", res, diff)
	}
	if _, err := h.Run(t.Context(), &pb.RunRequest{Job: "huge"}, time.Time{}, nil); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("run with a result over the limit: err = %v, want code ResourceExhausted", err)
	}
	for _, req := range []*pb.RunRequest{
		{Job: "settings", Settings: []byte(`"` + strings.Repeat("x", pluginwire.MaxMessage) + `"`)},
		{Job: "bad\xffname"},
	} {
		if _, err := h.Run(t.Context(), req, time.Time{}, nil); !errors.Is(err, pluginwire.ErrUnsendable) {
			t.Errorf("request %.20q: err = %v, want ErrUnsendable", req.GetJob(), err)
		}
	}
	close(release)
	if err := <-long; err != nil {
		t.Errorf("the run in flight meanwhile: %v", err)
	}
}

// TestEndedContextSendsNothing: a run whose context ended before it was sent never
// reaches the plugin.
func TestEndedContextSendsNothing(t *testing.T) {
	reached := make(chan string, 2)
	h := connect(t, handlerFunc(func(_ context.Context, r *pb.RunRequest, _ func(string)) (*pb.RunResult, error) {
		reached <- r.GetJob()
		return &pb.RunResult{}, nil
	}))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.Run(ctx, &pb.RunRequest{Job: "ended"}, time.Time{}, nil); status.Code(err) != codes.Canceled {
		t.Errorf("err = %v, want code Canceled", err)
	}
	if _, err := h.Run(t.Context(), &pb.RunRequest{Job: "next"}, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	if got := <-reached; got != "next" {
		t.Errorf("the plugin got run %q, which was never to be sent", got)
	}
}
