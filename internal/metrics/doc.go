// Package metrics is what a node tells Prometheus: its own counters and histograms
// (Metrics), and the fleet's state read from Redis at scrape time (Fleet). Every name starts
// with cronfleet_; docs/operate.md lists them all, and docs/grafana-dashboard.json draws
// them.
//
// # No global state
//
// New registers on the Registerer it is given, never on prometheus.DefaultRegisterer, and
// nothing here is package-level and mutable: two nodes in one test process, each with its
// own registry, count apart. A nil *Metrics is valid and counts nothing, so the engine, the
// plugin host, the queue and the lease keeper call it without a branch, and the CLI's
// commands and most tests pass none.
//
// # Who reports what
//
// The engine holds a *Metrics (engine.Config.Metrics) and counts what it decides: the run
// records it writes (the completer, once Redis accepted the record, and the records the
// claim script wrote for it: skipped, missed), and its claims. The queue, the lease keeper
// and the plugin host declare a one-method or two-method interface of their own
// (queue.Metrics, lease.Metrics, pluginhost.Metrics), which *Metrics implements: this package
// imports queue for its types, so they cannot import it back, and they stay free of
// Prometheus.
//
// A run is counted where its record is accepted, not where the handler returns: a completion
// that Redis refuses (another node claimed the occurrence since) writes no history, so the
// fleet's sum of cronfleet_runs_total matches what the histories hold.
//
// # Labels and cardinality
//
// No label ever holds an occurrence id, a node-supplied string or an error message. The
// labels are:
//
//   - job, on cronfleet_runs_total only: the names come from the job files, so the series
//     are bounded by jobs × statuses (seven statuses, and a job usually shows two or three of
//     them). With a very large job set that is the one metric that grows with it; drop the
//     label at scrape time (metric_relabel_configs) if the per-job rate is not wanted.
//   - status: the seven queue.Status values; result and cause: two values each; kind: the
//     closed set of queue.ErrorKinds; plugin: the plugin names of the job files.
//
// The histograms carry no label at all. Per job they would multiply the job count by the
// buckets (a hundred thousand jobs would make millions of series); a job's own durations and
// lateness are in its history. The fleet gauges carry no label either: every node reports
// the same values, so a dashboard takes max() over the nodes, not sum().
//
// # Buckets
//
// Lateness (handler start − due time, first attempts only: a retry starts late by its
// backoff, by design) runs from a millisecond to five minutes. The claim-ahead makes a
// healthy node start within a few milliseconds of the due time, so the low buckets are fine
// enough to show the p50 and p99 of a healthy fleet; tens to hundreds of milliseconds mean a
// loaded node or Redis; seconds mean a stalled node or a Redis outage; minutes mean
// occurrences run by catch-up after the fleet was down.
//
// Duration (handler start to return, every attempt) runs from ten milliseconds to four
// hours: cron handlers range from a webhook call to a nightly backup, and the buckets are
// spaced about twice apart so that a p99 is read within a factor of two anywhere in that
// range with sixteen buckets.
//
// # Claims won and lost
//
// Claims are decided inside Redis, so a node never sees the occurrence another node won;
// what it sees is a claim of a shard whose head it expected due that gave nothing. That is
// cronfleet_claims_lost_total: it counts such shard claims, not occurrences, which is why
// won (occurrences) and lost are two metrics rather than two values of one label.
//
// # The fleet collector
//
// Fleet asks Redis at each scrape, in one round trip (queue.Stats): every shard's agenda
// size, backlog and oldest due entry (a read-only script, so due is Redis' clock), and the
// node list. A scrape is bounded by FleetConfig.Timeout; when Redis does not answer in time
// the fleet gauges are left out and cronfleet_fleet_scrape_success reads 0, so the node's own
// metrics are still served.
package metrics
