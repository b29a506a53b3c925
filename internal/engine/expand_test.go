package engine

import (
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
	x := e.plan(j, map[string]time.Time{}, now)
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
