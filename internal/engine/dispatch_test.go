package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/metrics"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// The dispatcher's timing, on fake time. Each test runs an engine over a memAgenda inside a
// synctest bubble, where time.Now is both this node's monotonic clock and Redis' clock, and
// time advances only when every goroutine of the bubble waits: every instant is exact. A
// time.Sleep in a bubble moves the fake clock to the instant the test looks at; it
// synchronises nothing.

// t0 is where a bubble's fake clock starts.
var t0 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// onTime is how late a handler may start after its NotBefore: the start bound's drift
// allowance over the claim-ahead.
const onTime = time.Millisecond

// runInBubble starts an engine over a over the jobs of src and returns it with the handlers
// it runs, which return what fn returns.
func runInBubble(t *testing.T, a *memAgenda, src string, fn func(ctx context.Context, r *sdk.Run) (*sdk.Result, error), tweak func(*Config)) (*node, *handlers) {
	t.Helper()
	h := &handlers{fn: fn}
	n := start(t, a, jobs(t, "bubble", src), h, "a", tweak)
	t.Cleanup(func() {
		n.stop()
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.busy {
			t.Errorf("the engine called the agenda %d times at one instant: a busy loop", maxCallsAtOnce)
		}
	})
	return n, h
}

// sleepUntil moves the fake clock to t0+d.
func sleepUntil(d time.Duration) { time.Sleep(time.Until(t0.Add(d))) }

// TestDispatchTiming: whatever this node's clock says, an occurrence is claimed ClaimAhead
// before it is due by Redis' clock, neither earlier nor later, and its handler starts when it
// is due, never before. A retry, due at the end of its backoff, is never started early either.
func TestDispatchTiming(t *testing.T) {
	for _, skew := range []time.Duration{0, 30 * time.Second, -30 * time.Second} {
		t.Run(fmt.Sprintf("node clock off by %v", skew), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := newMemAgenda(5 * time.Second)
				failOnce := func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
					if r.Job == "flaky" && r.Attempt == 1 {
						return nil, errors.New("boom")
					}
					return nil, nil
				}
				n, h := runInBubble(t, a, `
job "tick" {
  schedule = "* * * * * *"
  handler "x" {}
}
job "flaky" {
  schedule = "1 0 0 1 1 *"
  retry {
    attempts = 2
    backoff = "300ms"
  }
  handler "x" {}
}`, failOnce, func(c *Config) { c.Now = func() time.Time { return time.Now().Add(skew) } })
				sleepUntil(5*time.Second + 500*time.Millisecond)
				n.stop()

				lead := n.e.cfg.ClaimAhead
				_, claims := a.log()
				if len(claims) != 8 {
					t.Errorf("%d claims, want 8: six of a job due every second from the start, two attempts of another", len(claims))
				}
				runs := map[string][]started{}
				for _, r := range h.started() {
					runs[r.OccurrenceID] = append(runs[r.OccurrenceID], r)
				}
				for _, c := range claims {
					occ, notBefore := c.claim.Occurrence, c.claim.NotBefore
					if c.lead != lead {
						t.Errorf("%s claimed with lead %v, want ClaimAhead %v", occ, c.lead, lead)
					}
					if c.at.Before(notBefore.Add(-lead)) {
						t.Errorf("%s claimed at %v, before its NotBefore less ClaimAhead", occ, c.at.Sub(t0))
					}
					// A first attempt is claimed on time, the very first at once; a retry is
					// picked up by the next claim of its shard.
					if want := later(notBefore.Add(-lead), t0); c.claim.Attempt == 1 && !c.at.Equal(want) {
						t.Errorf("%s claimed at %v, want %v", occ, c.at.Sub(t0), want.Sub(t0))
					}
					if len(runs[occ]) < c.claim.Attempt {
						t.Errorf("%s attempt %d never ran", occ, c.claim.Attempt)
						continue
					}
					r := runs[occ][c.claim.Attempt-1]
					if from := later(notBefore, c.at); r.At.Before(notBefore) || r.At.After(from.Add(onTime)) {
						t.Errorf("%s attempt %d started %v after its NotBefore (Redis' clock), want 0 to %v after it or its claim", occ, r.Attempt, r.At.Sub(notBefore), onTime)
					}
				}
				for occ, rs := range runs {
					for i, r := range rs {
						if r.Attempt != i+1 {
							t.Errorf("%s ran attempts %+v, want each once", occ, rs)
						}
					}
				}
			})
		})
	}
}

// TestDispatcherWakesForNewOccurrence: an occurrence the expander adds is claimed on time,
// though the dispatcher polls the agenda only once an hour.
func TestDispatcherWakesForNewOccurrence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newMemAgenda(5 * time.Second)
		// Due at 00:00:05 on 1 January, the one occurrence within the test: with a 2s horizon
		// the expander adds it at 00:00:03.5, while the dispatcher sleeps.
		n, h := runInBubble(t, a, `
job "new-year" {
  schedule = "5 0 0 1 1 *"
  handler "x" {}
}`, succeed, func(c *Config) { c.IdlePoll, c.Horizon = time.Hour, 2*time.Second })
		sleepUntil(6 * time.Second)
		n.stop()

		_, claims := a.log()
		due := t0.Add(5 * time.Second)
		if len(claims) != 1 || !claims[0].at.Equal(due.Add(-n.e.cfg.ClaimAhead)) {
			t.Fatalf("claims %+v, want one, at %v", claims, due.Add(-n.e.cfg.ClaimAhead).Sub(t0))
		}
		if runs := h.started(); len(runs) != 1 || runs[0].At.Before(due) || runs[0].At.After(due.Add(onTime)) {
			t.Errorf("runs %+v, want one started at %v", runs, due.Sub(t0))
		}
	})
}

// jobFile returns a job file of jobs named names, each due once, at offset past t0.
func jobFile(offset time.Duration, names ...string) string {
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "job %q {\n  schedule = \"%d 0 0 1 1 *\"\n  handler \"x\" {}\n}\n", name, int(offset/time.Second))
	}
	return b.String()
}

// jobNames returns n job names starting with prefix, all in shard if in, none of them in
// shard otherwise, each in a shard of its own.
func jobNames(prefix string, n, shard int, in bool) []string {
	var out []string
	used := map[int]bool{}
	for i := 0; len(out) < n; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		s := queue.ShardOf(name)
		if in && s == shard || !in && s != shard && !used[s] {
			out = append(out, name)
			used[s] = true
		}
	}
	return out
}

// TestFullBatchIsAskedAgainAtOnce: when more occurrences are due in a shard than one claim
// takes, the shard is asked again at once: all are claimed at the same instant, and every
// one starts on time.
func TestFullBatchIsAskedAgainAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const count = maxClaimBatch + maxClaimBatch/2
		a := newMemAgenda(5 * time.Second)
		n, h := runInBubble(t, a, jobFile(2*time.Second, jobNames("batch-", count, 0, true)...), succeed, nil)
		sleepUntil(3 * time.Second)
		n.stop()

		due := t0.Add(2 * time.Second)
		claimAt := due.Add(-n.e.cfg.ClaimAhead)
		calls, claims := a.log()
		var at []time.Time
		for _, c := range calls {
			if c.op == "claim" && c.at.Equal(claimAt) {
				at = append(at, c.at)
			}
		}
		if len(at) != 2 {
			t.Errorf("%d claim calls at %v, want 2: a full batch of %d, then the rest", len(at), claimAt.Sub(t0), maxClaimBatch)
		}
		if len(claims) != count {
			t.Fatalf("%d claims, want %d", len(claims), count)
		}
		for _, c := range claims {
			if !c.at.Equal(claimAt) {
				t.Errorf("%s claimed at %v, want %v", c.claim.Occurrence, c.at.Sub(t0), claimAt.Sub(t0))
			}
		}
		runs := h.started()
		if len(runs) != count {
			t.Errorf("%d runs, want %d", len(runs), count)
		}
		for _, r := range runs {
			if r.At.Before(due) || r.At.After(due.Add(onTime)) {
				t.Errorf("%s started at %v, want %v", r.OccurrenceID, r.At.Sub(t0), due.Sub(t0))
			}
		}
	})
}

// TestConcurrencyCapsRuns: a node never holds more claims than Config.Concurrency, counting
// those claimed ahead of their start, whether the due occurrences share a shard or not; the
// others wait in the agenda and run once a slot is free.
func TestConcurrencyCapsRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const concurrency = 3
		// Four runs due at 00:00:02 in one shard, four at 00:00:03 in four others; each run
		// lasts two seconds.
		src := jobFile(2*time.Second, jobNames("a", 4, 0, true)...) + jobFile(3*time.Second, jobNames("b", 4, 0, false)...)
		var mu sync.Mutex
		running, mostRunning := 0, 0
		hold := func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
			mu.Lock()
			running++
			mostRunning = max(mostRunning, running)
			mu.Unlock()
			defer func() { mu.Lock(); running--; mu.Unlock() }()
			select {
			case <-time.After(2 * time.Second):
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		a := newMemAgenda(5 * time.Second)
		n, h := runInBubble(t, a, src, hold, func(c *Config) { c.Concurrency = concurrency })
		sleepUntil(12 * time.Second)
		n.stop()

		a.mu.Lock()
		mostHeld := a.mostHeld
		a.mu.Unlock()
		if mostHeld != concurrency {
			t.Errorf("at most %d claims held at once, want Concurrency (%d)", mostHeld, concurrency)
		}
		if mostRunning > concurrency {
			t.Errorf("%d runs at once, want at most %d", mostRunning, concurrency)
		}
		ranOnceEach(t, h.started(), 8)
	})
}

// ranOnceEach checks that runs started n occurrences, each once.
func ranOnceEach(t *testing.T, runs []started, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range runs {
		seen[r.OccurrenceID]++
	}
	if len(seen) != n {
		t.Errorf("ran %v, want %d occurrences", seen, n)
	}
	for occ, k := range seen {
		if k != 1 {
			t.Errorf("%s ran %d times, want once", occ, k)
		}
	}
}

// TestOutageIsRetriedWithBackoff: while Redis is unreachable, the dispatcher retries with a
// jittered exponential backoff, the outage is logged once when it starts and once when it
// ends, and the occurrences that fell due meanwhile run once it is over.
func TestOutageIsRetriedWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down, up := t0.Add(1500*time.Millisecond), t0.Add(6500*time.Millisecond)
		refused := errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
		a := newMemAgenda(5 * time.Second)
		a.down = func(op string) error {
			if now := time.Now(); !now.Before(down) && now.Before(up) {
				return refused
			}
			return nil
		}
		n, h := runInBubble(t, a, `
job "tick" {
  schedule = "* * * * * *"
  handler "x" {}
}`, succeed, nil)
		sleepUntil(9*time.Second + 500*time.Millisecond)
		n.stop()

		logs := n.logs.String()
		for _, msg := range []string{`msg="redis unreachable; retrying with backoff"`, `msg="redis answering again"`} {
			if k := strings.Count(logs, msg); k != 1 {
				t.Errorf("%s logged %d times, want once", msg, k)
			}
		}
		// The dispatcher's claims from its first failure to its first success after the
		// outage: each waits out the backoff after the one before, within a quarter either
		// way of an interval that starts at 50ms and doubles, and never longer than 1.6s.
		calls, _ := a.log()
		var claims []agendaCall
		for _, c := range calls {
			if c.op == "claim" && (c.err != nil || len(claims) > 0) {
				claims = append(claims, c)
				if c.err == nil {
					break
				}
			}
		}
		if len(claims) < 6 || claims[len(claims)-1].err != nil {
			t.Fatalf("claims during the outage: %+v; want at least 5 failures, then a success", claims)
		}
		for i := 1; i < len(claims); i++ {
			interval := min(50*time.Millisecond<<(i-1), 1280*time.Millisecond)
			lo, hi := interval*3/4, min(interval*5/4, 1600*time.Millisecond)
			if gap := claims[i].at.Sub(claims[i-1].at); gap < lo || gap > hi+time.Millisecond {
				t.Errorf("retry %d came %v after the claim before, want %v to %v", i, gap, lo, hi)
			}
		}
		// Nothing lost: every occurrence ran once, those due during the outage after it.
		for _, r := range h.started() {
			if !r.ScheduledAt.Before(down) && r.At.Before(up) {
				t.Errorf("%s started during the outage", r.OccurrenceID)
			}
		}
		ranOnceEach(t, h.started(), 10) // those due in 9.5s
	})
}

// TestEvictionCheck: a Redis that refuses to say whether it evicts keys stops the node
// before it claims anything, but one that answers LOADING (reading its data after a
// restart) is waited out like an outage, and the node then runs.
func TestEvictionCheck(t *testing.T) {
	const src = `
job "tick" {
  schedule = "* * * * * *"
  handler "x" {}
}`
	t.Run("LOADING is waited out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a := newMemAgenda(5 * time.Second)
			loaded := t0.Add(2 * time.Second)
			a.eviction = func() error {
				if time.Now().Before(loaded) {
					return &queue.ReplyError{Kind: "LOADING"}
				}
				return nil
			}
			n, h := runInBubble(t, a, src, succeed, nil)
			sleepUntil(4500 * time.Millisecond)
			n.stop()
			if len(h.started()) == 0 {
				t.Error("no run once Redis had loaded its data")
			}
			if k := strings.Count(n.logs.String(), `msg="redis refused the call; retrying with backoff"`); k != 1 {
				t.Errorf("the wait for LOADING logged %d times, want once", k)
			}
		})
	})
	t.Run("a refusal stops the node", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a := newMemAgenda(5 * time.Second)
			a.eviction = func() error { return &queue.ReplyError{Kind: "NOPERM"} }
			e := New(a, &handlers{fn: succeed}, Config{Node: "a", Jobs: jobs(t, "bubble", src).Jobs, Lease: 5 * time.Second})
			err := e.Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), "refusing to run: cannot verify that Redis never evicts keys") {
				t.Errorf("Run = %v, want a refusal", err)
			}
			calls, _ := a.log()
			for _, c := range calls {
				if c.op != "check eviction" {
					t.Errorf("the node called %s on a Redis it refused to run on", c.op)
				}
			}
		})
	})
}

// TestJitterDelaysEachOccurrence: a job's jitter delays each occurrence by the amount its id
// draws (cron.Jitter), the same on every node: its handler starts then, never before, and
// is told that instant as its scheduled time, while the id keeps the schedule's instant.
func TestJitterDelaysEachOccurrence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newMemAgenda(5 * time.Second)
		n, h := runInBubble(t, a, `
job "spread" {
  schedule = "*/10 * * * * *"
  jitter   = "8s"
  handler "x" {}
}`, succeed, nil)
		sleepUntil(65 * time.Second)
		n.stop()

		runs := h.started()
		if len(runs) < 5 {
			t.Fatalf("%d runs in a minute, want about six", len(runs))
		}
		delays := map[time.Duration]bool{}
		for _, r := range runs {
			_, due, err := cron.ParseOccurrenceID(r.OccurrenceID)
			if err != nil {
				t.Fatal(err)
			}
			want := due.Add(cron.Jitter(r.OccurrenceID, 8*time.Second))
			delays[want.Sub(due)] = true
			if !r.ScheduledAt.Equal(want) {
				t.Errorf("%s told it was scheduled at %v, want %v (its due time plus its jitter)", r.OccurrenceID, r.ScheduledAt.Sub(t0), want.Sub(t0))
			}
			if r.At.Before(want) || r.At.After(want.Add(onTime)) {
				t.Errorf("%s started at %v, want %v", r.OccurrenceID, r.At.Sub(t0), want.Sub(t0))
			}
		}
		if len(delays) < 2 {
			t.Errorf("every occurrence was delayed by the same %v: the jitter is not drawn per occurrence", delays)
		}
	})
}

// TestReload: a reload adds jobs, which run from then on, and removes jobs, which run no
// more, while the engine keeps running.
func TestReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newMemAgenda(5 * time.Second)
		n, h := runInBubble(t, a, `
job "first" {
  schedule = "* * * * * *"
  handler "x" {}
}`, succeed, nil)
		sleepUntil(2500 * time.Millisecond)
		both := jobs(t, "bubble", `
job "first" {
  schedule = "* * * * * *"
  handler "x" {}
}
job "second" {
  schedule = "* * * * * *"
  handler "x" {}
}`)
		n.e.Reload(both.Jobs)
		sleepUntil(6500 * time.Millisecond)
		n.e.Reload(both.Jobs[1:]) // "first" removed
		removedAt := time.Now()
		sleepUntil(20 * time.Second)
		n.stop()

		var second int
		for _, r := range h.started() {
			job, due, err := cron.ParseOccurrenceID(r.OccurrenceID)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case job == "second" && due.Before(t0.Add(2500*time.Millisecond)):
				t.Errorf("%s ran, due before the job was added", r.OccurrenceID)
			case job == "second":
				second++
			case job == "first" && r.At.After(removedAt.Add(time.Second)):
				t.Errorf("%s started at %v, after the job was removed at %v", r.OccurrenceID, r.At.Sub(t0), removedAt.Sub(t0))
			}
		}
		if second < 15 {
			t.Errorf("the added job ran %d times in the 17s after it was added, want about 17", second)
		}
		if !strings.Contains(n.logs.String(), `msg="job set reloaded" jobs=1 added=0 removed=1 changed=0`) {
			t.Errorf("the removal was not logged as such:\n%s", n.logs.String())
		}
	})
}

// TestSaturatedNodeClaimsInBatches: a node whose slots are all taken, with more due, does
// not make a claim call for each slot that frees (each call costs Redis a fixed share): it
// gathers free slots for up to claimGather, or until claimFloor are free, and claims them
// together. Runs here end one a millisecond, so one call per slot freed would be one a
// millisecond.
func TestSaturatedNodeClaimsInBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const concurrency, count = 64, 256
		var mu sync.Mutex
		started := 0
		staggered := func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
			mu.Lock()
			d := time.Second + time.Duration(started%concurrency)*time.Millisecond
			started++
			mu.Unlock()
			select {
			case <-time.After(d):
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		var names []string // spread over the shards, so that some wait their turn (inTurn)
		for i := range count {
			names = append(names, fmt.Sprintf("sat-%d", i))
		}
		a := newMemAgenda(time.Minute)
		reg := prometheus.NewRegistry()
		n, h := runInBubble(t, a, jobFile(2*time.Second, names...), staggered,
			func(c *Config) { c.Concurrency, c.Metrics = concurrency, metrics.New(reg) })
		sleepUntil(10 * time.Second)
		n.stop()

		ranOnceEach(t, h.started(), count)
		// Alone, the node loses no claim to another: a shard left for its turn is not one.
		if lost := scrape(t, reg)["cronfleet_claims_lost_total"][""]; lost != 0 {
			t.Errorf("cronfleet_claims_lost_total = %v for a node alone, want 0", lost)
		}
		// The first runs end one a millisecond from 3s on: one call per slot freed would be
		// one a millisecond, where gathering makes one per claimGather at most.
		_, claims := a.log()
		calls := map[time.Time]int{}
		for _, c := range claims {
			if at := c.at.Sub(t0); at > 3*time.Second && at <= 3*time.Second+concurrency*time.Millisecond {
				calls[c.at]++
			}
		}
		if most := int(concurrency*time.Millisecond/claimGather) + 1; len(calls) > most {
			t.Errorf("%d claim calls while the first runs ended one a millisecond (%v), want at most %d", len(calls), calls, most)
		}
	})
}

// TestInTurn: with room to spare every due shard is asked; with few free slots only as many
// as give each minClaimShare, never more than free, starting after the last one asked, in
// shard order, whatever order the due shards come in, so each has its turn.
func TestInTurn(t *testing.T) {
	due := []int{9, 2, 14, 5}
	for _, tc := range []struct {
		free, last int
		spread     bool
		want       []int
		wantLast   int
	}{
		{free: 100, last: -1, spread: true, want: due, wantLast: -1},
		{free: 3, last: -1, spread: true, want: []int{2, 5, 9}, wantLast: 9},
		{free: 3, last: 9, spread: true, want: []int{14, 2, 5}, wantLast: 5},
		{free: 2 * minClaimShare, last: -1, want: []int{2, 5}, wantLast: 5},
		{free: 2 * minClaimShare, last: 5, want: []int{9, 14}, wantLast: 14},
		{free: 2 * minClaimShare, last: 14, want: []int{2, 5}, wantLast: 5},
		{free: 1, last: 6, want: []int{9}, wantLast: 9},
		{free: 4 * minClaimShare, last: 3, want: due, wantLast: 3},
	} {
		got, last := inTurn(slices.Clone(due), tc.free, tc.last, tc.spread)
		if !slices.Equal(got, tc.want) || last != tc.wantLast {
			t.Errorf("inTurn(%v, free %d, last %d, spread %v) = %v, %d; want %v, %d", due, tc.free, tc.last, tc.spread, got, last, tc.want, tc.wantLast)
		}
	}
	// Every due shard is asked within as many calls as the shards, however they come back.
	asked := map[int]bool{}
	last := -1
	for range len(due) {
		var got []int
		got, last = inTurn([]int{14, 9, 5, 2}, minClaimShare, last, false)
		asked[got[0]] = true
	}
	if len(asked) != len(due) {
		t.Errorf("asked %v in %d calls, want every one of %v", asked, len(due), due)
	}
}
