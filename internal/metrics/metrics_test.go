package metrics

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/lease"
	"github.com/cronfleet/cronfleet/internal/pluginhost"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// pluginhost cannot be asserted in metrics.go without importing the plugin host's gRPC
// stack into every user of metrics; the test holds the check instead.
var _ pluginhost.Metrics = (*Metrics)(nil)

// scrape serves reg as /metrics does and parses the text with Prometheus' own parser.
func scrape(t *testing.T, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}).
		ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// values returns family name's samples (counter, gauge or histogram count), keyed by their
// labels' values joined with ",".
func values(fams map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	f, ok := fams[name]
	if !ok {
		return nil
	}
	for _, m := range f.GetMetric() {
		key := ""
		for i, l := range m.GetLabel() {
			if i > 0 {
				key += ","
			}
			key += l.GetValue()
		}
		switch {
		case m.Counter != nil:
			out[key] = m.GetCounter().GetValue()
		case m.Gauge != nil:
			out[key] = m.GetGauge().GetValue()
		case m.Histogram != nil:
			out[key] = float64(m.GetHistogram().GetSampleCount())
		}
	}
	return out
}

func TestNilMetricsCountsNothing(t *testing.T) {
	t.Parallel()
	var m *Metrics
	// None of these may panic: callers never check.
	m.Recorded(&queue.Record{Job: "j", Status: queue.StatusSucceeded})
	m.Claims(1, 1)
	m.LeasesRenewed(1, 1)
	m.LeaseLost(lease.ErrLost)
	m.PluginRestarted("exec")
	m.RedisError("timeout")
}

func TestRecorded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := New(reg)
	due := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ran := func(status queue.Status, attempt int, late, took time.Duration) *queue.Record {
		return &queue.Record{Job: "backup", Status: status, Attempt: attempt, ScheduledAt: due,
			StartedAt: due.Add(late), EndedAt: due.Add(late + took)}
	}
	m.Recorded(ran(queue.StatusSucceeded, 1, 3*time.Millisecond, 2*time.Second))
	m.Recorded(ran(queue.StatusRetrying, 1, 2*time.Millisecond, time.Second))
	m.Recorded(ran(queue.StatusFailed, 2, time.Minute, time.Second)) // a retry: no lateness
	m.Recorded(ran(queue.StatusSucceeded, 1, -time.Millisecond, 0))  // clock estimate error
	alert := ran(queue.StatusSucceeded, 1, 2*time.Minute, time.Second)
	alert.Occurrence = "backup@2026-01-02T03:04:05.000Z~alert-late" // late by design: no lateness
	m.Recorded(alert)
	m.Recorded(&queue.Record{Job: "report", Status: queue.StatusSkipped})
	m.Recorded(&queue.Record{Job: "report", Status: queue.StatusMissed})
	m.Recorded(&queue.Record{Job: "report", Status: queue.StatusAbandoned, Attempt: 3})
	m.Recorded(nil)

	fams := scrape(t, reg)
	want := map[string]float64{"backup,succeeded": 3, "backup,retrying": 1, "backup,failed": 1,
		"report,skipped": 1, "report,missed": 1, "report,abandoned": 1}
	if diff := cmp.Diff(want, values(fams, "cronfleet_runs_total")); diff != "" {
		t.Errorf("cronfleet_runs_total (-want +got):\n%s", diff)
	}
	if got := values(fams, "cronfleet_run_duration_seconds")[""]; got != 5 {
		t.Errorf("duration observations = %v, want 5: the runs that started, every attempt", got)
	}
	h := fams["cronfleet_run_lateness_seconds"].GetMetric()[0].GetHistogram()
	if got := h.GetSampleCount(); got != 3 {
		t.Errorf("lateness observations = %v, want 3: first attempts that started, not alerts", got)
	}
	if got, want := h.GetSampleSum(), 0.005; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("lateness sum = %v, want %v: an early reading counts as on time", got, want)
	}
}

func TestCounters(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := New(reg)
	fams := scrape(t, reg)
	// Known label values exist before anything happened, at zero.
	for name, want := range map[string]map[string]float64{
		"cronfleet_lease_renewals_total": {"ok": 0, "failed": 0},
		"cronfleet_leases_lost_total":    {"not_renewed": 0, "taken": 0},
		"cronfleet_claims_won_total":     {"": 0},
		"cronfleet_claims_lost_total":    {"": 0},
	} {
		if diff := cmp.Diff(want, values(fams, name)); diff != "" {
			t.Errorf("%s before any event (-want +got):\n%s", name, diff)
		}
	}
	if got := len(values(fams, "cronfleet_redis_errors_total")); got != len(queue.ErrorKinds()) {
		t.Errorf("cronfleet_redis_errors_total has %d series at start, want one per kind (%d)", got, len(queue.ErrorKinds()))
	}

	m.Claims(5, 2)
	m.Claims(1, 0)
	m.LeasesRenewed(3, 1)
	m.LeaseLost(lease.ErrNotRenewed)
	m.LeaseLost(lease.ErrLost)
	m.LeaseLost(lease.ErrLost)
	m.PluginRestarted("exec")
	m.RedisError("timeout")
	m.RedisError("timeout")
	m.RedisError("oom")

	fams = scrape(t, reg)
	for name, want := range map[string]map[string]float64{
		"cronfleet_claims_won_total":      {"": 6},
		"cronfleet_claims_lost_total":     {"": 2},
		"cronfleet_lease_renewals_total":  {"ok": 3, "failed": 1},
		"cronfleet_leases_lost_total":     {"not_renewed": 1, "taken": 2},
		"cronfleet_plugin_restarts_total": {"exec": 1},
	} {
		if diff := cmp.Diff(want, values(fams, name)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	errs := values(fams, "cronfleet_redis_errors_total")
	if errs["timeout"] != 2 || errs["oom"] != 1 || errs["noscript"] != 0 {
		t.Errorf("cronfleet_redis_errors_total = %v, want timeout 2, oom 1, the others 0", errs)
	}
}

// TestTwoNodesCountApart: nothing is global, so two Metrics on two registries in one
// process (two nodes in a test) do not see each other's counts, and registering twice on
// one registry is refused.
func TestTwoNodesCountApart(t *testing.T) {
	t.Parallel()
	r1, r2 := prometheus.NewRegistry(), prometheus.NewRegistry()
	a, _ := New(r1), New(r2)
	a.Claims(1, 0)
	if got := values(scrape(t, r2), "cronfleet_claims_won_total")[""]; got != 0 {
		t.Errorf("second node's claims = %v, want 0", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("New on a registry that has the metrics already did not panic")
		}
	}()
	New(r1)
}

// stats is a StatsReader the test controls.
type stats func(ctx context.Context) (queue.Stats, error)

func (s stats) Stats(ctx context.Context, _ map[string]int) (queue.Stats, error) { return s(ctx) }

func TestFleet(t *testing.T) {
	t.Parallel()
	node := func(name, hash string, age time.Duration) queue.NodeSeen {
		return queue.NodeSeen{Node: queue.Node{Name: name, JobSetHash: hash}, Age: age}
	}
	tests := []struct {
		name string
		st   queue.Stats
		want map[string]float64
	}{{
		name: "agreeing nodes, a backlog",
		st: queue.Stats{Agenda: 120, Due: 3, OldestDue: 1500 * time.Millisecond,
			Nodes: []queue.NodeSeen{node("a", "h1", time.Second), node("b", "h1", 2*time.Second)}},
		want: map[string]float64{"cronfleet_agenda_occurrences": 120, "cronfleet_agenda_due_occurrences": 3,
			"cronfleet_agenda_unplaced_occurrences": 0, "cronfleet_agenda_oldest_due_seconds": 1.5, "cronfleet_nodes_live": 2, "cronfleet_job_sets_live": 1,
			"cronfleet_job_set_drift": 0, "cronfleet_fleet_scrape_success": 1, "cronfleet_fleet_scrape_errors_total": 0},
	}, {
		name: "drift among the live nodes; a dead node does not count",
		st: queue.Stats{Nodes: []queue.NodeSeen{node("a", "h1", time.Second), node("b", "h2", time.Second),
			node("c", "h3", queue.NodeTTL+time.Second)}},
		want: map[string]float64{"cronfleet_agenda_occurrences": 0, "cronfleet_agenda_due_occurrences": 0,
			"cronfleet_agenda_oldest_due_seconds": 0, "cronfleet_nodes_live": 2, "cronfleet_job_sets_live": 2,
			"cronfleet_job_set_drift": 1, "cronfleet_fleet_scrape_success": 1, "cronfleet_fleet_scrape_errors_total": 0},
	}}
	tests = append(tests, struct {
		name string
		st   queue.Stats
		want map[string]float64
	}{
		name: "occurrences no live node may run",
		st:   queue.Stats{Unplaced: map[string]int64{"eu-report": 3, "gpu-train": 1}, Nodes: []queue.NodeSeen{node("a", "h1", time.Second)}},
		want: map[string]float64{"cronfleet_agenda_unplaced_occurrences": 4, "cronfleet_nodes_live": 1},
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			reg.MustRegister(NewFleet(stats(func(context.Context) (queue.Stats, error) { return tc.st, nil }), FleetConfig{}))
			if tc.st.Unplaced != nil {
				byJob := values(scrape(t, reg), "cronfleet_agenda_unplaced_occurrences_by_job")
				want := map[string]float64{}
				for j, n := range tc.st.Unplaced {
					want[j] = float64(n)
				}
				if diff := cmp.Diff(want, byJob); diff != "" {
					t.Errorf("unplaced by job (-want +got):\n%s", diff)
				}
			}
			fams := scrape(t, reg)
			got := map[string]float64{}
			for name := range tc.want {
				got[name] = values(fams, name)[""]
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if _, ok := fams["cronfleet_fleet_scrape_duration_seconds"]; !ok {
				t.Error("no cronfleet_fleet_scrape_duration_seconds")
			}
		})
	}
}

// TestFleetScrapeBounded: a Redis that does not answer costs a scrape the timeout, not a
// hang, and the scrape still serves the node's other metrics, with the failure counted.
func TestFleetScrapeBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.Claims(1, 0)
	const timeout = 50 * time.Millisecond
	hung := stats(func(ctx context.Context) (queue.Stats, error) {
		<-ctx.Done() // a Redis that never answers: only the deadline ends the call
		return queue.Stats{}, ctx.Err()
	})
	reg.MustRegister(NewFleet(hung, FleetConfig{Timeout: timeout}))
	for i := 1; i <= 2; i++ {
		start := time.Now()
		fams := scrape(t, reg)
		if took := time.Since(start); took > timeout+5*time.Second {
			t.Errorf("scrape took %v with a timeout of %v", took, timeout)
		}
		if got := values(fams, "cronfleet_fleet_scrape_success")[""]; got != 0 {
			t.Errorf("cronfleet_fleet_scrape_success = %v, want 0", got)
		}
		if got := values(fams, "cronfleet_fleet_scrape_errors_total")[""]; got != float64(i) {
			t.Errorf("scrape %d: cronfleet_fleet_scrape_errors_total = %v, want %d", i, got, i)
		}
		if _, ok := fams["cronfleet_agenda_occurrences"]; ok {
			t.Error("fleet gauges served without an answer from Redis")
		}
		if got := values(fams, "cronfleet_claims_won_total")[""]; got != 1 {
			t.Errorf("the node's own metrics were lost with the fleet's: claims won = %v", got)
		}
	}
}

// TestFleetOverQueue: the collector over a real Queue (on miniredis), as a node wires it.
func TestFleetOverQueue(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	q := queue.New(rdb, queue.Config{Namespace: "fleet"})
	if err := q.Announce(t.Context(), queue.Node{Name: "a", JobSetHash: "h"}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewFleet(q, FleetConfig{}))
	fams := scrape(t, reg)
	for name, want := range map[string]float64{
		"cronfleet_fleet_scrape_success": 1, "cronfleet_agenda_occurrences": 0, "cronfleet_nodes_live": 1, "cronfleet_job_set_drift": 0,
	} {
		if got := values(fams, name)[""]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// TestFleetBacklogByPriority: the backlog gauge by priority has one series per priority the
// job set uses (the default always among them), zero where nothing of it is due, and is left
// out when the node gives no priorities.
func TestFleetBacklogByPriority(t *testing.T) {
	t.Parallel()
	var asked map[string]int
	st := stats(func(context.Context) (queue.Stats, error) {
		return queue.Stats{Due: 7, DueByPriority: map[int]int64{90: 5, 50: 2}}, nil
	})
	reader := statsWith{st, &asked}
	reg := prometheus.NewRegistry()
	prios := map[string]int{"urgent": 90, "slow": 10}
	reg.MustRegister(NewFleet(reader, FleetConfig{Priorities: func() map[string]int { return prios }}))
	got := values(scrape(t, reg), "cronfleet_agenda_due_occurrences_by_priority")
	if diff := cmp.Diff(map[string]float64{"90": 5, "50": 2, "10": 0}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(prios, asked); diff != "" {
		t.Errorf("priorities given to Stats (-want +got):\n%s", diff)
	}
	plain := prometheus.NewRegistry()
	plain.MustRegister(NewFleet(st, FleetConfig{}))
	if got := values(scrape(t, plain), "cronfleet_agenda_due_occurrences_by_priority"); got != nil {
		t.Errorf("without priorities: %v, want no series", got)
	}
}

// statsWith is a StatsReader that records the priorities it was given.
type statsWith struct {
	stats
	asked *map[string]int
}

func (s statsWith) Stats(ctx context.Context, prios map[string]int) (queue.Stats, error) {
	*s.asked = prios
	return s.stats(ctx)
}
