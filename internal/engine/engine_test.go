package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/redistest"
	"github.com/cronfleet/cronfleet/internal/testwait"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// started is what a test remembers of a run.
type started struct {
	OccurrenceID string
	ScheduledAt  time.Time
	Attempt      int
	FencingToken int64
	StopWithin   time.Duration
	// At is when the handler started: after waiting for the run's start instant, as the
	// plugin host does.
	At time.Time
}

// handlers is a Handlers whose behaviour the test decides; it records every run it starts.
type handlers struct {
	mu   sync.Mutex
	runs []started
	fn   func(ctx context.Context, r *sdk.Run) (*sdk.Result, error)
}

func (h *handlers) RunAt(ctx context.Context, plugin string, r *sdk.Run, startAt time.Time, output func(string)) (*sdk.Result, error) {
	if wait := time.Until(startAt); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	h.mu.Lock()
	h.runs = append(h.runs, started{OccurrenceID: r.OccurrenceID, ScheduledAt: r.ScheduledAt, Attempt: r.Attempt,
		FencingToken: r.FencingToken, StopWithin: r.StopWithin, At: time.Now()})
	h.mu.Unlock()
	output("hello from " + r.OccurrenceID)
	return h.fn(ctx, r)
}

func (h *handlers) started() []started {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]started(nil), h.runs...)
}

func succeed(ctx context.Context, r *sdk.Run) (*sdk.Result, error) { return nil, nil }

// jobs parses a job file with a runner block naming namespace and a 5s lease.
func jobs(t *testing.T, namespace, src string) *config.Config {
	t.Helper()
	src = fmt.Sprintf("runner {\n  namespace = %q\n  lease = \"5s\"\n}\n", namespace) + src
	cfg, srcs, diags := config.Parse("jobs.hcl", []byte(src))
	if diags.HasErrors() {
		var b strings.Builder
		_ = srcs.WriteDiagnostics(&b, diags)
		t.Fatal(b.String())
	}
	return cfg
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// node is one engine a test runs.
type node struct {
	e    *Engine
	logs *logBuffer
	stop func()
}

// start runs an engine named name over agenda until the test ends or stop is called.
func start(t *testing.T, agenda Agenda, cfg *config.Config, h Handlers, name string, tweak func(*Config)) *node {
	t.Helper()
	logs := &logBuffer{}
	c := Config{
		Node: name, Jobs: cfg.Jobs, Lease: cfg.Runner.Lease,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&c)
	}
	e := New(agenda, h, c)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("engine %s: %v", name, err)
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, logs.String())
		}
	})
	return &node{e: e, logs: logs, stop: stop}
}

// fleet is a real redis-server and a job file, for nodes that run whole occurrences.
type fleet struct {
	t   *testing.T
	srv *redistest.Server
	cfg *config.Config
	q   *queue.Queue // the agenda as a node sees it, to read history
}

// newFleet starts a redis-server for the jobs of src, in namespace.
func newFleet(t *testing.T, namespace, src string) *fleet {
	t.Helper()
	f := &fleet{t: t, srv: redistest.Start(t), cfg: jobs(t, namespace, src)}
	f.q = f.queue()
	return f
}

func (f *fleet) queue() *queue.Queue {
	return queue.New(f.srv.Client(f.t), queue.Config{Namespace: f.cfg.Runner.Namespace, Lease: f.cfg.Runner.Lease})
}

// node starts a node of the fleet, with a queue (a Redis client) of its own.
func (f *fleet) node(name string, h Handlers, tweak func(*Config)) *node {
	f.t.Helper()
	return start(f.t, f.queue(), f.cfg, h, name, tweak)
}

func (f *fleet) history(job string) []queue.Record {
	f.t.Helper()
	recs, err := f.q.History(f.t.Context(), job, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	return recs
}

// TestFailedRuns: what a failed run leaves in history, and whether it is retried.
func TestFailedRuns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		job  string // the job "j"
		fn   func(ctx context.Context, r *sdk.Run) (*sdk.Result, error)
		// within is how long the outcome may take to be recorded: done says it is.
		within time.Duration
		done   func(recs []queue.Record, runs []started) bool
		check  func(t *testing.T, recs []queue.Record, runs []started)
	}{{
		name: "retried with backoff, then failed",
		job: `
job "j" {
  schedule = "* * * * * *"
  retry {
    attempts = 3
    backoff = "200ms"
  }
  handler "x" {}
}`,
		fn:     failFirstOccurrence(),
		within: 30 * time.Second,
		done: func(recs []queue.Record, runs []started) bool {
			mine := recordsOf(recs, runs)
			return len(mine) >= 3 && mine[0].Status == queue.StatusFailed
		},
		check: func(t *testing.T, recs []queue.Record, runs []started) {
			var mine []started
			for _, r := range runs {
				if r.OccurrenceID == runs[0].OccurrenceID {
					mine = append(mine, r)
				}
			}
			for i, r := range mine {
				if r.Attempt != i+1 {
					t.Fatalf("runs %+v: want attempts 1, 2, 3 of one occurrence", mine)
				}
				if i > 0 && r.FencingToken <= mine[i-1].FencingToken {
					t.Errorf("fencing token %d after %d", r.FencingToken, mine[i-1].FencingToken)
				}
			}
			got := recordsOf(recs, runs)
			if len(got) != 3 {
				t.Fatalf("records of %s: %+v, want 3", runs[0].OccurrenceID, got)
			}
			want := []queue.Status{queue.StatusFailed, queue.StatusRetrying, queue.StatusRetrying}
			for i, w := range want {
				r := got[i]
				if r.Status != w || r.Attempt != 3-i || r.Error != fmt.Sprintf("boom %d", 3-i) || r.Message != "tried" || r.Node != "a" {
					t.Errorf("record %d = %+v, want status %s attempt %d", i, r, w, 3-i)
				}
				if !strings.Contains(r.Output, "hello from") {
					t.Errorf("record %d keeps no output excerpt: %q", i, r.Output)
				}
			}
			// The backoff doubles: attempt 3 starts at least 200ms + 400ms after attempt 1 ended.
			if gap := got[0].StartedAt.Sub(got[2].EndedAt); gap < 600*time.Millisecond {
				t.Errorf("attempt 3 started %s after attempt 1 ended; backoff is 200ms then 400ms", gap)
			}
		},
	}, {
		name: "timeout cancels the run",
		job: `
job "j" {
  schedule = "* * * * * *"
  timeout = "300ms"
  retry {
    attempts = 1
  }
  handler "x" {}
}`,
		fn: func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
		within: 10 * time.Second,
		done:   func(recs []queue.Record, _ []started) bool { return len(recs) > 0 },
		check: func(t *testing.T, recs []queue.Record, runs []started) {
			r := recs[0]
			if r.Status != queue.StatusFailed || !strings.Contains(r.Error, "timed out after 300ms") {
				t.Errorf("record %+v: want failed, timed out after 300ms", r)
			}
			// Never cut short: the handler would have run until its lease was lost otherwise,
			// and the record would not say "timed out".
			if d := r.EndedAt.Sub(r.StartedAt); d < 300*time.Millisecond {
				t.Errorf("run lasted %s; timeout is 300ms", d)
			}
			// The handler is told how long it has to stop once cancelled before its lease (5s)
			// may be taken over: the keeper's margin, a fifth of the lease.
			if got := runs[0].StopWithin; got != time.Second {
				t.Errorf("run's StopWithin = %v, want 1s (a fifth of the 5s lease)", got)
			}
		},
	}, {
		name: "permanent error is not retried",
		job: `
job "j" {
  schedule = "* * * * * *"
  retry {
    attempts = 3
    backoff = "100ms"
  }
  handler "x" {}
}`,
		fn: func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
			return nil, sdk.Permanent(errors.New("settings cannot work"))
		},
		within: 10 * time.Second,
		done:   func(recs []queue.Record, _ []started) bool { return len(recs) >= 3 },
		check: func(t *testing.T, recs []queue.Record, runs []started) {
			for _, r := range recs {
				if r.Status != queue.StatusFailed || r.Attempt != 1 {
					t.Errorf("record %+v: want failed at attempt 1, no retry", r)
				}
			}
			for _, r := range runs {
				if r.Attempt != 1 {
					t.Errorf("occurrence %s retried (attempt %d) after a permanent error", r.OccurrenceID, r.Attempt)
				}
			}
		},
	}}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, fmt.Sprintf("failed-%d", i), tc.job)
			h := &handlers{fn: tc.fn}
			f.node("a", h, nil)
			testwait.For(t, tc.within, "the outcome to be recorded", func() bool { return tc.done(f.history("j"), h.started()) })
			tc.check(t, f.history("j"), h.started())
		})
	}
}

// failFirstOccurrence returns a handler that fails every attempt of the first occurrence it
// sees, with "boom ATTEMPT" and a message, and succeeds for the others.
func failFirstOccurrence() func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
	var mu sync.Mutex
	var failing string
	return func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if failing == "" {
			failing = r.OccurrenceID
		}
		if r.OccurrenceID != failing {
			return nil, nil
		}
		return &sdk.Result{Message: "tried"}, fmt.Errorf("boom %d", r.Attempt)
	}
}

// recordsOf returns the records of the first occurrence run, newest first.
func recordsOf(recs []queue.Record, runs []started) []queue.Record {
	if len(runs) == 0 {
		return nil
	}
	var out []queue.Record
	for _, r := range recs {
		if r.Occurrence == runs[0].OccurrenceID {
			out = append(out, r)
		}
	}
	return out
}

func TestShutdownCancelsAfterGraceAndHandsTheOccurrenceBack(t *testing.T) {
	t.Parallel()
	f := newFleet(t, "drain", `
job "long" {
  schedule = "* * * * * *"
  retry {
    attempts = 1
  }
  handler "x" {}
}`)
	// Runs never end by themselves, so a.stop() returns only if the grace cancels them.
	cancelled := make(chan error, 100)
	h := &handlers{fn: func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
		<-ctx.Done()
		cancelled <- context.Cause(ctx)
		return nil, ctx.Err()
	}}
	a := f.node("a", h, func(c *Config) { c.Grace = 200 * time.Millisecond })
	testwait.For(t, 10*time.Second, "a run to start", func() bool { return len(h.started()) > 0 })
	occ := h.started()[0].OccurrenceID
	a.stop()
	select {
	case cause := <-cancelled:
		if !errors.Is(cause, errShutdown) {
			t.Errorf("handler cancelled with %v, want the shutdown cause", cause)
		}
	default:
		t.Fatal("engine returned without cancelling its running handler")
	}
	var rec *queue.Record
	for _, r := range f.history("long") {
		if r.Occurrence == occ {
			rec = &r
		}
	}
	if rec == nil || rec.Status != queue.StatusCancelled {
		t.Errorf("record of %s: %+v, want cancelled", occ, rec)
	}
	// Another node picks the occurrence up at once. The shutdown was not the job's fault, so
	// the attempt is given back: even with a single attempt allowed, the occurrence runs
	// again (attempt 1, a larger fencing token) and succeeds instead of being abandoned.
	h2 := &handlers{fn: succeed}
	f.node("b", h2, nil)
	testwait.For(t, 10*time.Second, "node b to re-run the occurrence and succeed", func() bool {
		for _, r := range f.history("long") {
			if r.Occurrence == occ && r.Status == queue.StatusSucceeded {
				return true
			}
		}
		return false
	})
	for _, r := range h2.started() {
		if r.OccurrenceID == occ && (r.Attempt != 1 || r.FencingToken <= h.started()[0].FencingToken) {
			t.Errorf("re-run of %s: attempt %d, token %d; want attempt 1 and a token above %d", occ, r.Attempt, r.FencingToken, h.started()[0].FencingToken)
		}
	}
}

// TestCatchUpRunsMissedOccurrencesOnceWithinTheWindow: with catchup = "all", what fell due
// while the whole fleet was down runs once each within the job's window; what is older is
// passed over, logged, and recorded as missed once.
func TestCatchUpRunsMissedOccurrencesOnceWithinTheWindow(t *testing.T) {
	t.Parallel()
	f := newFleet(t, "catchup", `
job "minutely" {
  schedule       = "* * * * *"
  overlap        = "allow"
  catchup        = "all"
  catchup_window = "5m30s"
  handler "x" {}
}`)
	// The fleet last expanded this job 10 minutes ago, then went down.
	last := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	if err := f.srv.Client(t).HSet(t.Context(), "{cf:catchup:"+fmt.Sprint(queue.ShardOf("minutely"))+"}:wm", "minutely", last.UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	h := &handlers{fn: succeed}
	n := f.node("a", h, nil)
	// Within the window: the five or six minutes before now; older ones are skipped, logged.
	oldest := time.Now().Add(-5*time.Minute - 30*time.Second)
	var want []string
	for m := last.Add(time.Minute); m.Before(time.Now()); m = m.Add(time.Minute) {
		if m.After(oldest) {
			want = append(want, cron.OccurrenceID("minutely", m))
		}
	}
	testwait.For(t, 10*time.Second, "the missed occurrences to run", func() bool { return len(h.started()) >= len(want) })
	got := map[string]int{}
	for _, r := range h.started() {
		got[r.OccurrenceID]++
	}
	for _, w := range want {
		if got[w] != 1 {
			t.Errorf("missed occurrence %s ran %d times, want once", w, got[w])
		}
	}
	if len(got) != len(want) {
		t.Errorf("ran %v, want exactly %v", got, want)
	}
	if !strings.Contains(n.logs.String(), "passing over occurrences missed by the whole fleet") {
		t.Error("passing over occurrences older than the catch-up window was not logged")
	}
	var missed []queue.Record
	for _, r := range f.history("minutely") {
		if r.Status == queue.StatusMissed {
			missed = append(missed, r)
		}
	}
	if len(missed) != 1 || !strings.Contains(missed[0].Error, "older than the catch-up window (5m30s)") || !missed[0].ScheduledAt.Equal(last.Add(time.Minute)) {
		t.Errorf("missed records %+v, want one for what is older than the window, from %v", missed, last.Add(time.Minute))
	}
}

// TestWrongClockFiresNothingEarly runs on a real Redis, whose clock is the machine's: the
// handlers compare their start with time.Now, Redis' clock. (TestDispatchTiming shows the
// same on fake time, to the millisecond.)
func TestWrongClockFiresNothingEarly(t *testing.T) {
	t.Parallel()
	f := newFleet(t, "skew", `
job "tick" {
  schedule = "* * * * * *"
  handler "x" {}
}`)
	var mu sync.Mutex
	var early []string
	h := &handlers{fn: func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
		if now := time.Now(); now.Before(r.ScheduledAt) {
			mu.Lock()
			early = append(early, fmt.Sprintf("%s started at %s", r.OccurrenceID, now.Format(time.StampMilli)))
			mu.Unlock()
		}
		return nil, nil
	}}
	// One node's clock is 30s fast, another's 30s slow: Redis' clock decides what is due.
	f.node("fast", h, func(c *Config) { c.Now = func() time.Time { return time.Now().Add(30 * time.Second) } })
	f.node("slow", h, func(c *Config) { c.Now = func() time.Time { return time.Now().Add(-30 * time.Second) } })
	testwait.For(t, 15*time.Second, "five runs", func() bool { return len(h.started()) >= 5 })
	mu.Lock()
	defer mu.Unlock()
	if len(early) > 0 {
		t.Errorf("runs started before they were due: %v", early)
	}
	// The fast node did not plan 30s ahead of Redis either: runs are one per second.
	seen := map[string]int{}
	for _, r := range h.started() {
		seen[r.OccurrenceID]++
	}
	for occ, n := range seen {
		if n != 1 {
			t.Errorf("%s ran %d times", occ, n)
		}
	}
	for _, r := range f.history("tick") {
		// Records carry the node's estimate of Redis' clock, good to a millisecond or two.
		if d := r.StartedAt.Sub(r.ScheduledAt); d < -2*time.Millisecond || d > 10*time.Second {
			t.Errorf("record %s: started %s after its due time by Redis' clock estimate", r.Occurrence, d)
		}
	}
}
