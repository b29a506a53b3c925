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
	Attempt      int
	FencingToken int64
	StopWithin   time.Duration
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
	h.runs = append(h.runs, started{OccurrenceID: r.OccurrenceID, Attempt: r.Attempt, FencingToken: r.FencingToken, StopWithin: r.StopWithin})
	h.mu.Unlock()
	output("hello from " + r.OccurrenceID)
	return h.fn(ctx, r)
}

func (h *handlers) started() []started {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]started(nil), h.runs...)
}

func jobs(t *testing.T, src string) *config.Config {
	t.Helper()
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

type node struct {
	q    *queue.Queue
	logs *logBuffer
	stop func()
}

// start runs an engine over a real Redis until the test ends (or stop is called).
func start(t *testing.T, srv *redistest.Server, cfg *config.Config, h Handlers, name string, tweak func(*Config)) *node {
	t.Helper()
	q := queue.New(srv.Client(t), queue.Config{Namespace: cfg.Runner.Namespace, Lease: cfg.Runner.Lease})
	logs := &logBuffer{}
	c := Config{
		Node: name, Jobs: cfg.Jobs, Lease: cfg.Runner.Lease,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&c)
	}
	e := New(q, h, c)
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
	return &node{q: q, logs: logs, stop: stop}
}

func history(t *testing.T, q *queue.Queue, job string) []queue.Record {
	t.Helper()
	recs, err := q.History(t.Context(), job, 100)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestFailedRunIsRetriedWithBackoffThenFails(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cfg := jobs(t, `
runner {
  namespace = "retry"
  lease = "5s"
}
job "flaky" {
  schedule = "* * * * * *"
  retry {
    attempts = 3
    backoff = "200ms"
  }
  handler "x" {}
}`)
	// The first occurrence the handler sees always fails; the others succeed.
	var mu sync.Mutex
	var failing string
	h := &handlers{fn: func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if failing == "" {
			failing = r.OccurrenceID
		}
		if r.OccurrenceID != failing {
			return nil, nil
		}
		return &sdk.Result{Message: "tried"}, fmt.Errorf("boom %d", r.Attempt)
	}}
	n := start(t, srv, cfg, h, "a", nil)
	var runs []started
	testwait.For(t, 20*time.Second, "three attempts of one occurrence", func() bool {
		runs = runs[:0]
		for _, r := range h.started() {
			if r.OccurrenceID == h.started()[0].OccurrenceID {
				runs = append(runs, r)
			}
		}
		return len(runs) >= 3
	})
	for i, r := range runs {
		if r.OccurrenceID != runs[0].OccurrenceID || r.Attempt != i+1 {
			t.Fatalf("runs %+v: want attempts 1, 2, 3 of one occurrence", runs)
		}
		if i > 0 && r.FencingToken <= runs[i-1].FencingToken {
			t.Errorf("fencing token %d after %d", r.FencingToken, runs[i-1].FencingToken)
		}
	}
	mine := func() []queue.Record {
		var out []queue.Record
		for _, r := range history(t, n.q, "flaky") {
			if r.Occurrence == runs[0].OccurrenceID {
				out = append(out, r)
			}
		}
		return out
	}
	testwait.For(t, 10*time.Second, "the final failure to be recorded", func() bool {
		recs := mine()
		return len(recs) >= 3 && recs[0].Status == queue.StatusFailed
	})
	recs := mine()
	if len(recs) != 3 {
		t.Fatalf("records of %s: %+v, want 3", runs[0].OccurrenceID, recs)
	}
	want := []queue.Status{queue.StatusFailed, queue.StatusRetrying, queue.StatusRetrying}
	for i, w := range want {
		r := recs[i]
		if r.Status != w || r.Attempt != 3-i || r.Error != fmt.Sprintf("boom %d", 3-i) || r.Message != "tried" || r.Node != "a" {
			t.Errorf("record %d = %+v, want status %s attempt %d", i, r, w, 3-i)
		}
		if !strings.Contains(r.Output, "hello from") {
			t.Errorf("record %d keeps no output excerpt: %q", i, r.Output)
		}
	}
	// The backoff doubles: attempt 3 starts at least 200ms + 400ms after attempt 1 ended.
	if gap := recs[0].StartedAt.Sub(recs[2].EndedAt); gap < 600*time.Millisecond {
		t.Errorf("attempt 3 started %s after attempt 1 ended; backoff is 200ms then 400ms", gap)
	}
}

func TestTimeoutCancelsTheRun(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cfg := jobs(t, `
runner {
  namespace = "timeout"
  lease = "5s"
}
job "slow" {
  schedule = "* * * * * *"
  timeout = "300ms"
  retry {
    attempts = 1
  }
  handler "x" {}
}`)
	h := &handlers{fn: func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	n := start(t, srv, cfg, h, "a", nil)
	testwait.For(t, 10*time.Second, "a timed out run to be recorded", func() bool { return len(history(t, n.q, "slow")) > 0 })
	r := history(t, n.q, "slow")[0]
	if r.Status != queue.StatusFailed || !strings.Contains(r.Error, "timed out after 300ms") {
		t.Errorf("record %+v: want failed, timed out after 300ms", r)
	}
	// Never cut short: the handler would have run until its lease was lost otherwise, and
	// the record would not say "timed out".
	if d := r.EndedAt.Sub(r.StartedAt); d < 300*time.Millisecond {
		t.Errorf("run lasted %s; timeout is 300ms", d)
	}
	// The handler is told how long it has to stop once cancelled before its lease (5s)
	// may be taken over: the keeper's margin, a fifth of the lease.
	if got := h.started()[0].StopWithin; got != time.Second {
		t.Errorf("run's StopWithin = %v, want 1s (a fifth of the 5s lease)", got)
	}
}

func TestShutdownCancelsAfterGraceAndHandsTheOccurrenceBack(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cfg := jobs(t, `
runner {
  namespace = "drain"
  lease = "5s"
}
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
	a := start(t, srv, cfg, h, "a", func(c *Config) { c.Grace = 200 * time.Millisecond })
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
	for _, r := range history(t, a.q, "long") {
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
	h2 := &handlers{fn: func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) { return nil, nil }}
	b := start(t, srv, cfg, h2, "b", nil)
	testwait.For(t, 10*time.Second, "node b to re-run the occurrence and succeed", func() bool {
		for _, r := range history(t, b.q, "long") {
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

func TestCatchUpRunsMissedOccurrencesOnceWithinTheWindow(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cfg := jobs(t, `
runner {
  namespace = "catchup"
  lease = "5s"
}
job "minutely" {
  schedule = "* * * * *"
  handler "x" {}
}`)
	// The fleet last expanded this job 10 minutes ago, then went down.
	last := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	if err := srv.Client(t).HSet(t.Context(), "{cf:catchup:"+fmt.Sprint(queue.ShardOf("minutely"))+"}:wm", "minutely", last.UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	h := &handlers{fn: func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) { return nil, nil }}
	n := start(t, srv, cfg, h, "a", func(c *Config) { c.CatchupWindow = 5*time.Minute + 30*time.Second })
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
	if !strings.Contains(n.logs.String(), "skipping occurrences missed by the whole fleet") {
		t.Error("skipping occurrences older than the catch-up window was not logged")
	}
}

func TestWrongClockFiresNothingEarly(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cfg := jobs(t, `
runner {
  namespace = "skew"
  lease = "5s"
}
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
	fast := start(t, srv, cfg, h, "fast", func(c *Config) { c.Now = func() time.Time { return time.Now().Add(30 * time.Second) } })
	start(t, srv, cfg, h, "slow", func(c *Config) { c.Now = func() time.Time { return time.Now().Add(-30 * time.Second) } })
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
	for _, r := range history(t, fast.q, "tick") {
		// Records carry the node's estimate of Redis' clock, good to a millisecond or two.
		if d := r.StartedAt.Sub(r.ScheduledAt); d < -2*time.Millisecond || d > 10*time.Second {
			t.Errorf("record %s: started %s after its due time by Redis' clock estimate", r.Occurrence, d)
		}
	}
}

func TestPermanentErrorIsNotRetried(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cfg := jobs(t, `
runner {
  namespace = "permanent"
  lease = "5s"
}
job "bad" {
  schedule = "* * * * * *"
  retry {
    attempts = 3
    backoff = "100ms"
  }
  handler "x" {}
}`)
	h := &handlers{fn: func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
		return nil, sdk.Permanent(errors.New("settings cannot work"))
	}}
	n := start(t, srv, cfg, h, "a", nil)
	testwait.For(t, 10*time.Second, "three occurrences to fail", func() bool { return len(history(t, n.q, "bad")) >= 3 })
	for _, r := range history(t, n.q, "bad") {
		if r.Status != queue.StatusFailed || r.Attempt != 1 {
			t.Errorf("record %+v: want failed at attempt 1, no retry", r)
		}
	}
	for _, r := range h.started() {
		if r.Attempt != 1 {
			t.Errorf("occurrence %s retried (attempt %d) after a permanent error", r.OccurrenceID, r.Attempt)
		}
	}
}
