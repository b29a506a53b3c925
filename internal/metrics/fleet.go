package metrics

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// StatsReader is where a Fleet reads the fleet's state: internal/queue's Queue.
type StatsReader interface {
	// Stats reads the agendas and the list of nodes, and counts the backlog by the given
	// job priorities unless they are nil; it must return once ctx is done.
	Stats(ctx context.Context, prios map[string]int) (queue.Stats, error)
}

var _ StatsReader = (*queue.Queue)(nil)

// FleetConfig tunes a Fleet. Zero fields take the defaults documented on each.
type FleetConfig struct {
	// Timeout bounds the Redis calls of one scrape (default 2s): a scrape that gets no
	// answer in time reports cronfleet_fleet_scrape_success 0 instead of hanging the
	// scraper, whose own timeout would lose every other metric of the node too.
	Timeout time.Duration
	// Logger hears when scrapes start failing and when they succeed again; nil discards.
	Logger *slog.Logger
	// Priorities returns the priority of each job of the node's job set whose priority is
	// not queue.DefaultPriority, read at each scrape (the job set may be reloaded); nil
	// leaves cronfleet_agenda_due_occurrences_by_priority out.
	Priorities func() map[string]int
}

// Fleet is a prometheus.Collector of the fleet's state, read from Redis at each scrape: the
// agenda, its backlog, the live nodes and whether they run the same job set. Every node can
// register one, and each answers for the whole fleet, since the truth is in Redis.
type Fleet struct {
	r   StatsReader
	cfg FleetConfig
	log *slog.Logger

	agenda, due, dueBy, oldest, nodes, jobSets, drift *prometheus.Desc
	unplaced, unplacedBy                              *prometheus.Desc
	success, took                                     *prometheus.Desc
	errors                                            prometheus.Counter

	mu      sync.Mutex
	failing bool // the last scrape failed: logged once, not per scrape
}

// NewFleet returns a Fleet reading r; the caller registers it.
func NewFleet(r StatsReader, cfg FleetConfig) *Fleet {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fleet{
		r: r, cfg: cfg, log: log,
		agenda: prometheus.NewDesc("cronfleet_agenda_occurrences",
			"Occurrences in the agenda, over every shard: planned, held by a node, or waiting for a retry.", nil, nil),
		due: prometheus.NewDesc("cronfleet_agenda_due_occurrences",
			"Occurrences due by Redis' clock that no node holds: the backlog.", nil, nil),
		// The label takes the job set's distinct priorities: a bounded set, at most one per
		// priority a job may have.
		dueBy: prometheus.NewDesc("cronfleet_agenda_due_occurrences_by_priority",
			"The backlog by the priority of each occurrence's job, for every priority the job set uses.", []string{"priority"}, nil),
		unplaced: prometheus.NewDesc("cronfleet_agenda_unplaced_occurrences",
			"Due occurrences that wait for a live node their job's constraints allow: none is alive.", nil, nil),
		// Only jobs that have some: those whose constraints match no live node.
		unplacedBy: prometheus.NewDesc("cronfleet_agenda_unplaced_occurrences_by_job",
			"The unplaced occurrences by job, for the jobs that have any.", []string{"job"}, nil),
		oldest: prometheus.NewDesc("cronfleet_agenda_oldest_due_seconds",
			"How long the earliest occurrence of the backlog has been due, by Redis' clock (0 when there is none).", nil, nil),
		nodes: prometheus.NewDesc("cronfleet_nodes_live",
			"Nodes that announced themselves within the liveness window.", nil, nil),
		jobSets: prometheus.NewDesc("cronfleet_job_sets_live",
			"Distinct job-set hashes among the live nodes: more than one means they were given different job files.", nil, nil),
		drift: prometheus.NewDesc("cronfleet_job_set_drift",
			"1 when the live nodes run different job sets, else 0.", nil, nil),
		success: prometheus.NewDesc("cronfleet_fleet_scrape_success",
			"1 if the fleet's state could be read from Redis at this scrape, else 0 (and the fleet gauges are absent).", nil, nil),
		took: prometheus.NewDesc("cronfleet_fleet_scrape_duration_seconds",
			"How long reading the fleet's state from Redis took at this scrape.", nil, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cronfleet_fleet_scrape_errors_total",
			Help: "Scrapes at which the fleet's state could not be read from Redis (error or timeout).",
		}),
	}
}

// Describe implements prometheus.Collector.
func (f *Fleet) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{f.agenda, f.due, f.dueBy, f.unplaced, f.unplacedBy, f.oldest, f.nodes, f.jobSets, f.drift, f.success, f.took} {
		ch <- d
	}
	f.errors.Describe(ch)
}

// Collect implements prometheus.Collector: it reads the fleet's state, within the timeout.
func (f *Fleet) Collect(ch chan<- prometheus.Metric) {
	// prometheus.Collector hands Collect no context: the timeout is what bounds the scrape.
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.Timeout)
	defer cancel()
	start := time.Now()
	var prios map[string]int
	if f.cfg.Priorities != nil {
		if prios = f.cfg.Priorities(); prios == nil {
			prios = map[string]int{}
		}
	}
	st, err := f.r.Stats(ctx, prios)
	ch <- prometheus.MustNewConstMetric(f.took, prometheus.GaugeValue, time.Since(start).Seconds())
	f.report(err)
	if err != nil {
		f.errors.Inc()
		f.errors.Collect(ch)
		ch <- prometheus.MustNewConstMetric(f.success, prometheus.GaugeValue, 0)
		return
	}
	f.errors.Collect(ch)
	ch <- prometheus.MustNewConstMetric(f.success, prometheus.GaugeValue, 1)
	live, sets := liveJobSets(st.Nodes)
	drift := 0.0
	if sets > 1 {
		drift = 1
	}
	var unplaced int64
	for job, n := range st.Unplaced {
		unplaced += n
		ch <- prometheus.MustNewConstMetric(f.unplacedBy, prometheus.GaugeValue, float64(n), job)
	}
	for _, m := range []struct {
		d *prometheus.Desc
		v float64
	}{
		{f.agenda, float64(st.Agenda)},
		{f.due, float64(st.Due)},
		{f.unplaced, float64(unplaced)},
		{f.oldest, st.OldestDue.Seconds()},
		{f.nodes, float64(live)},
		{f.jobSets, float64(sets)},
		{f.drift, drift},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.GaugeValue, m.v)
	}
	if prios != nil {
		// Every priority in use, none left out for having no backlog.
		used := map[int]bool{queue.DefaultPriority: true}
		for _, p := range prios {
			used[p] = true
		}
		for p := range st.DueByPriority {
			used[p] = true
		}
		for p := range used {
			ch <- prometheus.MustNewConstMetric(f.dueBy, prometheus.GaugeValue, float64(st.DueByPriority[p]), strconv.Itoa(p))
		}
	}
}

// report logs when scrapes start failing and when they work again, not at each scrape.
func (f *Fleet) report(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err != nil && !f.failing:
		f.log.Warn("metrics: cannot read the fleet's state from Redis; its gauges are left out until it can", "err", err)
	case err == nil && f.failing:
		f.log.Info("metrics: the fleet's state can be read from Redis again")
	}
	f.failing = err != nil
}

// liveJobSets counts the live nodes and their distinct job-set hashes, as `runner status`
// tells drift: only live nodes count, since a dead node's job set runs nowhere.
func liveJobSets(nodes []queue.NodeSeen) (live, sets int) {
	hashes := map[string]bool{}
	for _, n := range nodes {
		if n.Age <= queue.NodeTTL {
			live++
			hashes[n.JobSetHash] = true
		}
	}
	return live, len(hashes)
}
