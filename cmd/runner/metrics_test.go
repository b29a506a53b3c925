package main_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cronfleet/cronfleet/internal/testwait"
)

// metricsJobs is a job that succeeds five times and one that fails twice for good, each
// failure after a retry, then neither runs again (max_runs): the counters then hold still
// while the test compares them with the history.
func metricsJobs(string) string {
	return `runner {
  namespace = "e2e"
  lease     = "2s"
}
job "fine" {
  schedule = "* * * * * *"
  max_runs = 5
  handler "exec" {
    command = ["true"]
  }
}
job "broken" {
  schedule = "*/2 * * * * *"
  max_runs = 2
  retry {
    attempts = 2
    backoff  = "100ms"
  }
  handler "exec" {
    command = ["sh", "-c", "echo no disk; exit 3"]
  }
}
`
}

// scrapeRuns reads a node's /metrics with Prometheus' text parser and returns
// cronfleet_runs_total by job and status, and the run-duration histogram's count.
func scrapeRuns(t *testing.T, base string) (map[string]float64, float64) {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", res.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	runs := map[string]float64{}
	for _, m := range fams["cronfleet_runs_total"].GetMetric() {
		var job, status string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "job":
				job = l.GetValue()
			case "status":
				status = l.GetValue()
			}
		}
		runs[job+" "+status] += m.GetCounter().GetValue()
	}
	var durations float64
	for _, m := range fams["cronfleet_run_duration_seconds"].GetMetric() {
		durations += float64(m.GetHistogram().GetSampleCount())
	}
	for _, name := range []string{"cronfleet_claims_won_total", "cronfleet_agenda_occurrences", "cronfleet_nodes_live", "go_goroutines"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s serves no %s", base, name)
		}
	}
	return runs, durations
}

// TestMetricsMatchHistory: the run counters two real nodes serve at /metrics, parsed by
// Prometheus' text parser and summed, are the fleet's history, job by job and status by
// status.
func TestMetricsMatchHistory(t *testing.T) {
	t.Parallel()
	f := newFleet(t, metricsJobs)
	a := f.startWithHTTP("node-a")
	b := f.startWithHTTP("node-b")
	count := func(job string) map[string]float64 {
		out := map[string]float64{}
		for _, r := range f.history("e2e", job) {
			out[job+" "+string(r.Status)]++
		}
		return out
	}
	testwait.For(t, 30*time.Second, "five runs of fine and two failures of broken", func() bool {
		return count("fine")["fine succeeded"] == 5 && count("broken")["broken failed"] == 2
	})
	want := count("fine")
	for k, v := range count("broken") {
		want[k] = v
	}
	if want["broken retrying"] != 2 {
		t.Errorf("history %v: want each failure after a retry", want)
	}
	// The counters follow the records once Redis accepted them; wait for both nodes'.
	var got map[string]float64
	var durations float64
	ok := testwait.Until(10*time.Second, func() bool {
		got = map[string]float64{}
		durations = 0
		for _, base := range []string{a, b} {
			runs, d := scrapeRuns(t, base)
			for k, v := range runs {
				got[k] += v
			}
			durations += d
		}
		for k, v := range got {
			if v == 0 {
				delete(got, k)
			}
		}
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
	if !ok {
		t.Errorf("cronfleet_runs_total summed over the nodes:\n%v\nthe history:\n%v", got, want)
	}
	if durations != 9 {
		t.Errorf("run durations observed %v times, want the 9 runs that started", durations)
	}
}
