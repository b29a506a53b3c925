package engine

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cronfleet/cronfleet/internal/metrics"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/testwait"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// scraped is what one scrape of a node's /metrics said: each family's samples by their
// labels' values, and each histogram's count.
type scraped map[string]map[string]float64

// scrape serves reg as /metrics does and reads it back with Prometheus' own text parser.
func scrape(t *testing.T, reg prometheus.Gatherer) scraped {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}).
		ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := scraped{}
	for name, f := range fams {
		out[name] = map[string]float64{}
		for _, m := range f.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + " "
			}
			switch {
			case m.Counter != nil:
				out[name][key] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				out[name][key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestRunCountersMatchHistory: over two nodes, the runs each node counts, summed, are the
// records the fleet's history holds, status by status: runs that succeed, fail, are retried,
// and occurrences skipped by the claim script (a paused job).
func TestRunCountersMatchHistory(t *testing.T) {
	t.Parallel()
	f := newFleet(t, "metrics", `
job "ok" {
  schedule = "* * * * * *"
  handler "x" {}
}
job "flaky" {
  schedule = "* * * * * *"
  retry {
    attempts = 2
    backoff  = "100ms"
  }
  handler "x" {}
}
job "paused" {
  schedule = "* * * * * *"
  handler "x" {}
}`)
	if err := f.q.Pause(t.Context(), "paused", queue.Pause{Note: "metrics test"}); err != nil {
		t.Fatal(err)
	}
	h := &handlers{fn: func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
		if r.Job == "flaky" {
			return nil, errors.New("flaky fails")
		}
		return nil, nil
	}}
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	var nodes []*node
	for i, name := range []string{"a", "b"} {
		m := metrics.New(regs[i])
		nodes = append(nodes, f.node(name, h, func(c *Config) { c.Metrics = m }))
	}
	jobs := []string{"ok", "flaky", "paused"}
	history := func() map[string]float64 {
		n := map[string]float64{}
		for _, j := range jobs {
			for _, r := range f.history(j) {
				n["job="+j+" status="+string(r.Status)+" "]++
			}
		}
		return n
	}
	testwait.For(t, 20*time.Second, "runs of each status", func() bool {
		n := history()
		return n["job=ok status=succeeded "] >= 4 && n["job=flaky status=failed "] >= 3 &&
			n["job=flaky status=retrying "] >= 3 && n["job=paused status=skipped "] >= 3
	})
	// Once the nodes stopped, nothing more is recorded: the counters have to agree exactly.
	for _, n := range nodes {
		n.stop()
	}
	want := history()
	var recs []queue.Record
	for _, j := range jobs {
		recs = append(recs, f.history(j)...)
	}

	got := map[string]float64{}
	var won, durations, lateness float64
	for _, reg := range regs {
		s := scrape(t, reg)
		for k, v := range s["cronfleet_runs_total"] {
			got[k] += v
		}
		won += s["cronfleet_claims_won_total"][""]
		durations += s["cronfleet_run_duration_seconds"][""]
		lateness += s["cronfleet_run_lateness_seconds"][""]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cronfleet_runs_total summed over the nodes, against the history (-want +got):\n%s", diff)
	}
	// Every claim wrote one record; what the claim script skipped was never claimed.
	var claimed, ran, first float64
	for _, r := range recs {
		if r.Attempt > 0 {
			claimed++
		}
		if r.Status == queue.StatusSucceeded || r.Status == queue.StatusFailed || r.Status == queue.StatusRetrying || r.Status == queue.StatusCancelled {
			ran++
			if r.Attempt == 1 {
				first++
			}
		}
	}
	if won != claimed {
		t.Errorf("cronfleet_claims_won_total = %v over the nodes, want %v: the records of claimed occurrences", won, claimed)
	}
	if durations != ran || lateness != first {
		t.Errorf("duration and lateness observations = %v and %v, want %v (runs) and %v (first attempts)", durations, lateness, ran, first)
	}
}
