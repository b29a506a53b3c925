package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/lease"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// Metrics holds one node's collectors. Its methods are safe for concurrent use, and safe on
// a nil *Metrics, which counts nothing: tests and the CLI's commands pass none, and their
// callers never branch on it.
type Metrics struct {
	runs     *prometheus.CounterVec
	lateness prometheus.Histogram
	duration prometheus.Histogram

	claimsWon, claimsLost prometheus.Counter

	renewedOK, renewedFailed  prometheus.Counter
	lostNotRenewed, lostTaken prometheus.Counter

	pluginRestarts *prometheus.CounterVec
	redisErrors    *prometheus.CounterVec
}

// The bucket boundaries, in seconds (see the package doc for why these).
var (
	latenessBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
	durationBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800, 3600, 4 * 3600}
)

// New returns a node's Metrics with every collector registered on reg. It panics if one of
// them is registered on reg already, like prometheus.MustRegister: that is a wiring mistake,
// found at the first start.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cronfleet_runs_total",
			Help: "Run records this node wrote to history, by job and status (succeeded, failed, retrying, cancelled, abandoned, skipped, missed).",
		}, []string{"job", "status"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cronfleet_run_lateness_seconds",
			Help:    "How long after its due time a handler started, for first attempts, by Redis' clock as this node estimates it.",
			Buckets: latenessBuckets,
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cronfleet_run_duration_seconds",
			Help:    "How long handlers ran, from start to return, every attempt.",
			Buckets: durationBuckets,
		}),
		claimsWon: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cronfleet_claims_won_total",
			Help: "Occurrences this node claimed.",
		}),
		claimsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cronfleet_claims_lost_total",
			Help: "Claims of an agenda shard that this node expected to hold due occurrences and that gave none: another node claimed them first.",
		}),
		pluginRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cronfleet_plugin_restarts_total",
			Help: "Plugin processes taken out of service because they failed (exited, failed a health check, broke the connection); the next run starts a new one.",
		}, []string{"plugin"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cronfleet_redis_errors_total",
			Help: "Failed Redis calls and error replies, by kind.",
		}, []string{"kind"}),
	}
	renewals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cronfleet_lease_renewals_total",
		Help: "Leases a renewal extended (ok) or did not (failed: the call failed, the shard refused it, or another node holds the lock).",
	}, []string{"result"})
	lost := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cronfleet_leases_lost_total",
		Help: "Runs cancelled because their lease was lost: not renewed in time, or taken by another node.",
	}, []string{"cause"})
	// The label values known in advance exist from the start, at zero, so that rate() and
	// alerts see their first increase.
	m.renewedOK, m.renewedFailed = renewals.WithLabelValues("ok"), renewals.WithLabelValues("failed")
	m.lostNotRenewed, m.lostTaken = lost.WithLabelValues("not_renewed"), lost.WithLabelValues("taken")
	for _, k := range queue.ErrorKinds() {
		m.redisErrors.WithLabelValues(k)
	}
	reg.MustRegister(m.runs, m.lateness, m.duration, m.claimsWon, m.claimsLost, renewals, lost, m.pluginRestarts, m.redisErrors)
	return m
}

// The interfaces of the packages that report to a Metrics without importing it.
var (
	_ queue.Metrics = (*Metrics)(nil)
	_ lease.Metrics = (*Metrics)(nil)
)

// Recorded counts a run record that this node wrote to history, accepted by Redis: the
// outcome of a run, or of an occurrence not run (skipped, missed, abandoned). A record of a
// handler's run is also observed in the duration histogram, and in the lateness histogram if
// it was the first attempt: a retry starts late by its backoff, by design.
func (m *Metrics) Recorded(rec *queue.Record) {
	if m == nil || rec == nil {
		return
	}
	m.runs.WithLabelValues(rec.Job, string(rec.Status)).Inc()
	switch rec.Status {
	case queue.StatusSucceeded, queue.StatusFailed, queue.StatusRetrying, queue.StatusCancelled:
	default:
		return // never started
	}
	m.duration.Observe(rec.EndedAt.Sub(rec.StartedAt).Seconds())
	// An alert's record is dated by the occurrence it is about, so its start is late by
	// design (a late alert by late_after): it would only blur the fleet's punctuality.
	if rec.Attempt == 1 && !cron.IsAlert(rec.Occurrence) {
		// Never early by Redis' clock; a start before the due time is the error of this
		// node's estimate of that clock, not a run that went early.
		m.lateness.Observe(max(rec.StartedAt.Sub(rec.ScheduledAt), 0).Seconds())
	}
}

// Claims counts one claim call's outcome: won occurrences claimed, and lost shards that were
// expected to hold due occurrences and gave none.
func (m *Metrics) Claims(won, lost int) {
	if m == nil {
		return
	}
	m.claimsWon.Add(float64(won))
	m.claimsLost.Add(float64(lost))
}

// LeasesRenewed counts the leases one renewal extended and those it did not. It implements
// lease.Metrics.
func (m *Metrics) LeasesRenewed(ok, failed int) {
	if m == nil {
		return
	}
	m.renewedOK.Add(float64(ok))
	m.renewedFailed.Add(float64(failed))
}

// LeaseLost counts a run cancelled because its lease was lost, by cause: lease.ErrNotRenewed
// (Redis unreachable or slow: look at Redis) or another node holding the lock (this node
// stalled: look at the node). It implements lease.Metrics.
func (m *Metrics) LeaseLost(cause error) {
	if m == nil {
		return
	}
	if errors.Is(cause, lease.ErrNotRenewed) {
		m.lostNotRenewed.Inc()
		return
	}
	m.lostTaken.Inc()
}

// PluginRestarted counts a plugin process taken out of service because it failed. It
// implements pluginhost.Metrics.
func (m *Metrics) PluginRestarted(plugin string) {
	if m == nil {
		return
	}
	m.pluginRestarts.WithLabelValues(plugin).Inc()
}

// RedisError counts a failed Redis call or error reply, by kind (queue.ErrorKind). It
// implements queue.Metrics.
func (m *Metrics) RedisError(kind string) {
	if m == nil {
		return
	}
	m.redisErrors.WithLabelValues(kind).Inc()
}
