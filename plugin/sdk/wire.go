package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// server adapts a Handler to pluginwire.Handler: it converts between the
// wire messages and Run/Result, ties each run to the plugin's lifetime and
// keeps count of the runs in flight so that shutdown can wait for them.
type server struct {
	h      Handler
	log    *slog.Logger
	base   context.Context // cancelled when the plugin shuts down
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (s *server) Run(ctx context.Context, req *pb.RunRequest, output func(string)) (*pb.RunResult, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "plugin is shutting down")
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.base, cancel)
	defer stop()

	run := &Run{
		Job:          req.GetJob(),
		Attempt:      int(req.GetAttempt()),
		FencingToken: req.GetFencingToken(),
		OccurrenceID: req.GetOccurrenceId(),
		Node:         req.GetNode(),
		Settings:     req.GetSettings(),
		output:       output,
		logger:       s.log,
	}
	if req.GetScheduledAt() != nil {
		run.ScheduledAt = req.GetScheduledAt().AsTime()
	}
	res, err := s.call(ctx, run)
	run.flush()

	out := &pb.RunResult{}
	if res != nil {
		out.Message, out.Metadata, out.Output = res.Message, res.Metadata, res.Output
	}
	if err != nil {
		out.HasError, out.Error = true, err.Error()
	}
	return out, nil
}

// call runs the handler and turns a panic into an error, so that one bad
// run does not take down the other runs sharing the plugin process.
func (s *server) call(ctx context.Context, run *Run) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			run.Logger().Error("handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res, err = nil, fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return s.h.Run(ctx, run)
}

// shutdown refuses new runs and waits for the running ones. The caller
// cancels base first so that they are asked to stop.
func (s *server) shutdown() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
}
