package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
)

// TestPlanNext: each planned occurrence carries the instant its successor may start (its
// jitter included), the last one too, from the schedule beyond the horizon; the claim
// script's catch-up "latest" depends on it.
func TestPlanNext(t *testing.T) {
	cfg := jobs(t, "plan", `
job "jittered" {
  schedule = "*/4 * * * * *"
  jitter   = "3s"
  handler "x" {}
}`)
	j := cfg.Jobs[0]
	e := New(nil, nil, Config{Jobs: cfg.Jobs, Horizon: 10 * time.Second})
	now := time.Date(2026, 12, 5, 12, 0, 1, 0, time.UTC)
	x := e.plan(j, map[string]time.Time{}, now, now.Add(10*time.Second))
	if len(x.Due) != 2 || len(x.Next) != 2 || len(x.NotBefore) != 2 {
		t.Fatalf("planned %v (next %v), want the two due within the horizon (:04, :08)", x.Due, x.Next)
	}
	for i, d := range x.Due {
		next := j.Sched.Next(d)
		want := next.Add(cron.Jitter(cron.OccurrenceID(j.Name, next), j.Jitter))
		if !x.Next[i].Equal(want) {
			t.Errorf("next of %v = %v, want %v", d, x.Next[i], want)
		}
		if i+1 < len(x.Due) && !x.Next[i].Equal(x.NotBefore[i+1]) {
			t.Errorf("next of %v = %v, want the next one's start %v", d, x.Next[i], x.NotBefore[i+1])
		}
	}
}

// TestHorizonEndSpreadsJobs checks the expander's horizon per job: at least half a horizon
// ahead and at most a whole one, each job expanded again every half-horizon at a phase of
// its own, and the jobs of a large set spread over the passes rather than all in one.
func TestHorizonEndSpreadsJobs(t *testing.T) {
	const horizon = 10 * time.Second
	e := New(nil, nil, Config{Horizon: horizon})
	start := time.Date(2026, 12, 6, 12, 0, 0, 500*int(time.Millisecond), time.UTC)
	const jobs, passes = 10000, 60
	perPass := make([]int, passes)
	for i := range jobs {
		job := fmt.Sprintf("job-%d", i)
		var until, last time.Time
		n := 0                  // expansions of the job so far
		for p := range passes { // a pass every second, at the mid-second mark, as the expander's
			now := start.Add(time.Duration(p) * time.Second)
			if n > 0 && until.After(now.Add(horizon/2)) {
				continue
			}
			end := e.horizonEnd(job, now)
			if end.Before(now.Add(horizon/2)) || end.After(now.Add(horizon)) {
				t.Fatalf("%s at %v: horizon end %v, want within [%v, %v]", job, now, end, now.Add(horizon/2), now.Add(horizon))
			}
			// The first expansion of all comes at the job's phase; from then on, every
			// half-horizon.
			if n >= 2 && now.Sub(last) != horizon/2 {
				t.Fatalf("%s expanded at %v, %v after the last: want every %v", job, now, now.Sub(last), horizon/2)
			}
			if n > 0 {
				perPass[p]++
			}
			until, last = end, now
			n++
		}
	}
	// After the first pass, which plans every job, each pass plans about a fifth of them.
	for p := 6; p < passes; p++ {
		if n := perPass[p]; n < jobs/5*8/10 || n > jobs/5*12/10 {
			t.Errorf("pass %d planned %d of %d jobs again, want about a fifth", p, n, jobs)
		}
	}
}
