package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// server adapts a Handler to pluginwire.Handler: it converts between the
// wire messages and Run/Result, ties each run to the plugin's lifetime and
// keeps count of the runs in flight so that shutdown can wait for them.
type server struct {
	h    Handler
	log  *slog.Logger
	base context.Context // cancelled when the plugin shuts down
	// cancelGrace is how long a handler may take to return after its ctx
	// was cancelled before stuck is called with its run; zero disables.
	cancelGrace time.Duration
	stuck       func(*Run)

	schemaOnce sync.Once
	schema     Schema
	defaults   defaults
	schemaErr  error // what is wrong with schema: the Schema call reports it

	// burstHold bounds how long a finished run sent ahead holds its result while
	// other runs of its scheduled instant have yet to start; zero disables.
	burstHold time.Duration

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	bursts map[time.Time]*burst // guarded by mu
}

// burst counts the runs sent ahead for one scheduled instant that have not started yet.
// A run that finished holds its result until the others have started (or burstHold
// passed): sending a result costs CPU that the burst's starts need more, and a result
// makes the runner record a completion, which costs more CPU again. It stays because the
// fleet benchmark shows it: docs/benchmarks.md has the runs with and without it.
type burst struct {
	pending int
	started chan struct{} // closed when pending reaches 0
}

// defaultBurstHold is Serve's burstHold: long next to the starts of a burst, short next to
// a lease.
const defaultBurstHold = 100 * time.Millisecond

// joinBurst registers a run sent ahead for scheduledAt; the returned function marks it
// started (or abandoned) and returns the burst's channel.
func (s *server) joinBurst(scheduledAt time.Time) func() <-chan struct{} {
	s.mu.Lock()
	if s.bursts == nil {
		s.bursts = map[time.Time]*burst{}
	}
	b := s.bursts[scheduledAt]
	if b == nil {
		b = &burst{started: make(chan struct{})}
		s.bursts[scheduledAt] = b
	}
	b.pending++
	s.mu.Unlock()
	var once sync.Once
	return func() <-chan struct{} {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if b.pending--; b.pending == 0 {
				close(b.started)
				if s.bursts[scheduledAt] == b {
					delete(s.bursts, scheduledAt)
				}
			}
		})
		return b.started
	}
}

// loadSchema asks the handler for its schema once (it must not change anyway), checks it
// and encodes its defaults.
func (s *server) loadSchema() {
	s.schemaOnce.Do(func() {
		s.schema = s.h.Schema()
		s.schemaErr = s.schema.Validate()
		if s.schemaErr == nil {
			s.defaults, s.schemaErr = s.schema.encodeDefaults()
		}
	})
}

func (s *server) Schema(context.Context) (*pb.SchemaResponse, error) {
	s.loadSchema()
	if s.schemaErr != nil {
		return nil, status.Error(codes.FailedPrecondition, s.schemaErr.Error())
	}
	out := &pb.SchemaResponse{}
	for _, a := range s.schema.Attributes {
		out.Attributes = append(out.Attributes, &pb.Attribute{Name: a.Name, Type: a.Type.String(), Required: a.Required,
			Description: a.Description, DefaultJson: s.defaults[a.Name]})
	}
	return out, nil
}

func (s *server) Check(_ context.Context, req *pb.CheckRequest) (*pb.CheckResponse, error) {
	s.loadSchema()
	if s.schemaErr != nil {
		return nil, status.Error(codes.FailedPrecondition, s.schemaErr.Error())
	}
	out := &pb.CheckResponse{}
	for _, p := range check(s.h, s.defaults, req.GetSettings()) {
		out.Problems = append(out.Problems, &pb.Problem{Attribute: p.Attribute, Message: p.Message})
	}
	return out, nil
}

func (s *server) Run(ctx context.Context, req *pb.RunRequest, startAt time.Time, output func(string)) (*pb.RunResult, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		// Aborted tells the host that the handler never saw this run: it may send it to a
		// fresh process.
		return nil, status.Error(codes.Aborted, "plugin is shutting down: the run was not started")
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.base, cancel)
	defer stop()

	s.loadSchema()
	if s.schemaErr != nil {
		// The runner refuses such a plugin before any run; a run that comes anyway must not
		// go ahead with its defaults left out.
		return &pb.RunResult{HasError: true, Permanent: true, Error: s.schemaErr.Error()}, nil
	}
	settings, err := s.defaults.fill(req.GetSettings())
	if err != nil {
		return &pb.RunResult{HasError: true, Permanent: true, Error: err.Error()}, nil
	}
	run := &Run{
		Job:          req.GetJob(),
		Attempt:      int(req.GetAttempt()),
		FencingToken: req.GetFencingToken(),
		OccurrenceID: req.GetOccurrenceId(),
		Node:         req.GetNode(),
		Settings:     settings,
		StopWithin:   time.Duration(req.GetStopWithinMs()) * time.Millisecond,
		Upstream:     req.GetUpstream(),
		ShardIndex:   int(req.GetShardIndex()),
		ShardCount:   int(req.GetShardCount()),
		output:       output,
		logger:       s.log,
	}
	if req.GetScheduledAt() != nil {
		run.ScheduledAt = req.GetScheduledAt().AsTime()
	}
	if a := req.GetAlert(); a != nil {
		run.Alert = &Alert{Kind: a.GetKind(), Job: a.GetJob(), Occurrence: a.GetOccurrenceId(),
			Status: a.GetStatus(), Error: a.GetError()}
		if a.GetScheduledAt() != nil {
			run.Alert.ScheduledAt = a.GetScheduledAt().AsTime()
		}
	}
	// The runner sent the run ahead of its start: wait for it, so that a burst of runs
	// starts together, on time.
	var burstStarted <-chan struct{}
	if !startAt.IsZero() {
		start := s.joinBurst(run.ScheduledAt)
		defer start() // abandoned, if it never started
		waitUntil(ctx, startAt)
		burstStarted = start()
	}
	if ctx.Err() != nil {
		return &pb.RunResult{HasError: true, Error: fmt.Sprintf("cancelled before it started: %v", context.Cause(ctx))}, nil
	}
	returned := make(chan struct{})
	if grace := s.cancelGrace; grace > 0 && s.stuck != nil {
		// A handler that ignores its cancellation keeps its work (and
		// maybe a job's processes) alive that the runner believes stopped;
		// past StopWithin, another node may be running the occurrence too.
		if run.StopWithin > 0 {
			grace = min(grace, run.StopWithin)
		}
		unwatch := context.AfterFunc(ctx, func() {
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-returned:
			case <-t.C:
				s.stuck(run)
			}
		})
		defer unwatch()
	}
	res, err := callHandler(ctx, s.h, run)
	close(returned)
	if burstStarted != nil {
		// Runs sent ahead wake together at their start time: let the others start their
		// handlers before this one spends CPU on sending its result. Only then: a yield
		// wakes another thread, which is not free either.
		runtime.Gosched()
	}
	if burstStarted != nil && s.burstHold > 0 {
		t := time.NewTimer(s.burstHold)
		select {
		case <-burstStarted:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	run.flush()

	out := &pb.RunResult{}
	if res != nil {
		out.Message, out.Metadata, out.Output = res.Message, res.Metadata, res.Output
	}
	if err != nil {
		out.HasError, out.Error, out.Permanent = true, err.Error(), IsPermanent(err)
	}
	return out, nil
}

// callHandler runs h and turns a panic into an error, so that one bad run
// does not take down the other runs sharing the plugin process.
func callHandler(ctx context.Context, h Handler, run *Run) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			run.Logger().Error("handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res, err = nil, fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h.Run(ctx, run)
}

// Call runs h on run in this process the way Serve runs it in a plugin:
// attributes of run.Settings that are absent or null are set to the
// defaults of h's Schema, lines written to run.Output go to output (nil
// discards; a trailing partial line is sent before Call returns), and a
// panic in h becomes an error. run.Logger discards. Call is for tests (see
// package sdktest) and benchmarks; run must not have been used before.
func Call(ctx context.Context, h Handler, run *Run, output func(line string)) (*Result, error) {
	settings, err := h.Schema().applyDefaults(run.Settings)
	if err != nil {
		return nil, Permanent(err)
	}
	run.Settings = settings
	run.output = output
	defer run.flush()
	return callHandler(ctx, h, run)
}

// refuseNew makes every later Run return Aborted: the handler never sees it,
// so the host may send it to a fresh process.
func (s *server) refuseNew() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// shutdown refuses new runs and waits for the running ones. The caller
// cancels base first so that they are asked to stop.
func (s *server) shutdown() {
	s.refuseNew()
	s.wg.Wait()
}

// waitUntil returns at the instant t, a time.Now reading whose monotonic clock counts (a
// step of the wall clock moves nothing), or when ctx is done.
//
// Go's timers can fire up to about a millisecond late on an idle process (the poller waits
// in whole milliseconds), which would be most of the lateness of a run sent ahead. So the
// timer aims startSpin early, and the rest is a yielding wait on the clock: at most that
// long, once per run sent ahead.
func waitUntil(ctx context.Context, t time.Time) {
	for {
		d := time.Until(t)
		if d <= 0 || ctx.Err() != nil {
			return
		}
		if d <= startSpin {
			for time.Now().Before(t) && ctx.Err() == nil {
				runtime.Gosched()
			}
			return
		}
		timer := time.NewTimer(d - startSpin)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

// startSpin is how much of a wait for a start time is spent yielding on the clock rather
// than sleeping on a timer.
const startSpin = 1500 * time.Microsecond
