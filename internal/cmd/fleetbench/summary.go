package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/plugin/handlers/noop"
)

// summary is the outcome of one benchmark run. Durations are in milliseconds or
// microseconds, as their names say.
type summary struct {
	Jobs         int    `json:"jobs"`
	Nodes        int    `json:"nodes"`
	CPUs         int    `json:"cpus"`
	Warmup       string `json:"warmup"`
	Window       string `json:"window"`
	GoVersion    string `json:"go_version"`
	RedisVersion string `json:"redis_version"`
	NodeLogLevel string `json:"node_log_level"`

	// Over the occurrences scheduled in the window.
	Expected     int `json:"expected"`
	Succeeded    int `json:"succeeded"`
	Duplicates   int `json:"duplicates"`
	Misses       int `json:"misses"`
	MissingStart int `json:"succeeded_without_start_time"`
	// Lateness is scheduled time → handler start; NodeLateness → the node hands the run to
	// the plugin host; PluginLateness is the rest (the gRPC call into the plugin).
	Lateness       quantiles      `json:"lateness_ms"`
	NodeLateness   quantiles      `json:"node_lateness_ms"`
	PluginLateness quantiles      `json:"plugin_lateness_ms"`
	LatenessTarget float64        `json:"lateness_p99_target_ms,omitempty"`
	RunsPerNode    map[string]int `json:"runs_per_node"`
	// Spread is, per second of the window, the most runs one node started of that second's
	// occurrences over the mean per node (1 is an even spread, Nodes is one node alone):
	// its mean over the window and its worst second.
	Spread      float64 `json:"spread_max_over_mean"`
	SpreadWorst float64 `json:"spread_max_over_mean_worst"`
	// OtherRecords counts the window's records that did not succeed, by status (retries
	// after a failed plugin call, say): they are not duplicates, but they are not free.
	OtherRecords map[string]int `json:"other_records,omitempty"`

	// Over the whole run (start-up, warm-up, window, drain).
	RunSucceeded   int    `json:"run_succeeded"`
	RunDuplicates  int    `json:"run_duplicates"`
	NodeRoundTrips *int64 `json:"node_redis_round_trips,omitempty"`
	NodeCommands   *int64 `json:"node_redis_commands,omitempty"`

	// Redis' own count over the window (INFO commandstats, without INFO itself).
	RedisScriptCalls int64 `json:"redis_script_calls"`
	RedisCommands    int64 `json:"redis_commands_executed"`

	// CPU time over the window, per occurrence in the window.
	CPUNodes   float64 `json:"cpu_nodes_us_per_occurrence"`
	CPUPlugins float64 `json:"cpu_plugins_us_per_occurrence"`
	CPURedis   float64 `json:"cpu_redis_us_per_occurrence"`
	// NodeRSS is each node's resident memory (MiB) at the start, the middle and the end of
	// the window: a node whose memory still grows in the second half leaks.
	NodeRSS  map[string][3]float64 `json:"node_rss_mib,omitempty"`
	CPUTotal float64               `json:"cpu_total_us_per_occurrence"`
	// CPUBusy is the machine share the fleet used during the window (1 = every core).
	CPUBusy float64 `json:"cpu_busy_share"`
	// MachineBusy is the share of the machine that was busy during the window, the fleet and
	// everything else on the machine together.
	MachineBusy float64 `json:"machine_busy_share"`

	windowSeconds float64
}

// quantiles of a distribution, in milliseconds.
type quantiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// quantilesOf returns the nearest-rank quantiles of ds.
func quantilesOf(ds []time.Duration) quantiles {
	if len(ds) == 0 {
		return quantiles{}
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		i := max(0, int(math.Ceil(p*float64(len(ds))))-1)
		return ms(ds[i])
	}
	return quantiles{N: len(ds), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// occurrence is what the history says about one occurrence.
type occurrence struct {
	succeeded int
	started   int // records with a handler start time
}

// analyse counts duplicates and misses and measures lateness over the occurrences scheduled
// in [t0, t1).
func (s *summary) analyse(recs []queue.Record, jobs []string, t0, t1 time.Time) {
	s.windowSeconds = t1.Sub(t0).Seconds()
	s.RunsPerNode, s.OtherRecords = map[string]int{}, map[string]int{}
	occs := map[string]*occurrence{}
	var late, nodeLate, pluginLate []time.Duration
	perSecond := map[time.Time]map[string]int{}
	for _, r := range recs {
		o := occs[r.Occurrence]
		if o == nil {
			o = &occurrence{}
			occs[r.Occurrence] = o
		}
		ns, err := strconv.ParseInt(r.Metadata[noop.StartedAtKey], 10, 64)
		hasStart := err == nil
		if hasStart {
			o.started++
		}
		inWindow := !r.ScheduledAt.Before(t0) && r.ScheduledAt.Before(t1)
		if r.Status != queue.StatusSucceeded {
			if inWindow {
				s.OtherRecords[string(r.Status)+" on "+r.Node]++
			}
			continue
		}
		o.succeeded++
		s.RunSucceeded++
		if !inWindow {
			continue
		}
		s.Succeeded++
		s.RunsPerNode[r.Node]++
		if perSecond[r.ScheduledAt] == nil {
			perSecond[r.ScheduledAt] = map[string]int{}
		}
		perSecond[r.ScheduledAt][r.Node]++
		if !hasStart {
			s.MissingStart++
			continue
		}
		start := time.Unix(0, ns)
		late = append(late, start.Sub(r.ScheduledAt))
		nodeLate = append(nodeLate, r.StartedAt.Sub(r.ScheduledAt))
		pluginLate = append(pluginLate, start.Sub(r.StartedAt))
	}
	for id, o := range occs {
		if o.succeeded > 1 || o.started > 1 {
			s.RunDuplicates++
			if _, due, err := cron.ParseOccurrenceID(id); err == nil && !due.Before(t0) && due.Before(t1) {
				s.Duplicates++
			}
		}
	}
	for _, j := range jobs {
		for due := t0; due.Before(t1); due = due.Add(time.Second) {
			s.Expected++
			if o := occs[cron.OccurrenceID(j, due)]; o == nil || o.succeeded == 0 {
				s.Misses++
			}
		}
	}
	s.Lateness, s.NodeLateness, s.PluginLateness = quantilesOf(late), quantilesOf(nodeLate), quantilesOf(pluginLate)
	s.Spread, s.SpreadWorst = spread(perSecond, s.Nodes)
	switch {
	case s.Jobs <= 200:
		s.LatenessTarget = 5
	case s.Jobs <= 2000:
		s.LatenessTarget = 50
	}
}

// spread returns the mean and the worst, over the seconds of perSecond (due second → node
// → runs), of the most runs one node took of a second over the mean of the nodes.
func spread(perSecond map[time.Time]map[string]int, nodes int) (mean, worst float64) {
	if len(perSecond) == 0 || nodes < 1 {
		return 0, 0
	}
	for _, by := range perSecond {
		most, total := 0, 0
		for _, n := range by {
			most, total = max(most, n), total+n
		}
		r := float64(most) / (float64(total) / float64(nodes))
		mean += r
		worst = max(worst, r)
	}
	return mean / float64(len(perSecond)), worst
}

// addCPU sets the CPU time per occurrence from the samples at both ends of the window.
func (s *summary) addCPU(before, after cpuSample, tick time.Duration, logger *slog.Logger) {
	nodes := delta("node", before.nodes, after.nodes, tick, logger)
	plugins := delta("plugin", before.plugins, after.plugins, tick, logger)
	redis := delta("redis", before.redis, after.redis, tick, logger)
	total := nodes + plugins + redis
	if s.Succeeded > 0 {
		per := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(s.Succeeded) }
		s.CPUNodes, s.CPUPlugins, s.CPURedis, s.CPUTotal = per(nodes), per(plugins), per(redis), per(total)
	}
	if s.windowSeconds > 0 && s.CPUs > 0 {
		s.CPUBusy = total.Seconds() / s.windowSeconds / float64(s.CPUs)
	}
	if d := after.total - before.total; d > 0 {
		s.MachineBusy = float64(after.busy-before.busy) / float64(d)
	}
}

// addCommandStats sets Redis' own count of the commands it executed during the window.
func (s *summary) addCommandStats(before, after map[string]int64) {
	for name, n := range after {
		d := n - before[name]
		switch name {
		case "info":
			continue // fleetbench's own sampling
		case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
			s.RedisScriptCalls += d
		}
		s.RedisCommands += d
	}
}

// perOcc divides n by the occurrences of the window, or of the whole run.
func perOcc(n int64, occs int) float64 {
	if occs == 0 {
		return 0
	}
	return float64(n) / float64(occs)
}

// printSummary writes the summary for people.
func printSummary(w io.Writer, s *summary) {
	fmt.Fprintf(w, "fleetbench: %d jobs every second, %d nodes, window %s after %s warm-up (%d CPUs, %s, redis %s, node log level %s)\n",
		s.Jobs, s.Nodes, s.Window, s.Warmup, s.CPUs, s.GoVersion, s.RedisVersion, s.NodeLogLevel)
	fmt.Fprintf(w, "occurrences in window   expected %d, succeeded %d\n", s.Expected, s.Succeeded)
	fmt.Fprintf(w, "duplicates              %d (whole run: %d)   target 0\n", s.Duplicates, s.RunDuplicates)
	fmt.Fprintf(w, "misses                  %d   target 0\n", s.Misses)
	for _, st := range sortedKeys(s.OtherRecords) {
		fmt.Fprintf(w, "records not succeeded   %d %s\n", s.OtherRecords[st], st)
	}
	if s.MissingStart > 0 {
		fmt.Fprintf(w, "succeeded without a handler start time: %d\n", s.MissingStart)
	}
	q := func(name string, q quantiles) {
		fmt.Fprintf(w, "%-23s p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms\n", name, q.P50, q.P90, q.P99, q.Max)
	}
	q("lateness", s.Lateness)
	q("  scheduled → node", s.NodeLateness)
	q("  node → handler", s.PluginLateness)
	if s.LatenessTarget > 0 {
		verdict := "met"
		if s.Lateness.P99 > s.LatenessTarget {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "lateness p99 target     ≤ %.0f ms: %s\n", s.LatenessTarget, verdict)
	}
	if s.NodeRoundTrips != nil {
		trips := perOcc(*s.NodeRoundTrips, s.RunSucceeded)
		verdict := "met"
		if trips > 2 {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "redis per occurrence    %.3f round trips, %.3f commands (node counters over the whole run: %d trips, %d commands, %d runs)   target ≤ 2 round trips: %s\n",
			trips, perOcc(*s.NodeCommands, s.RunSucceeded), *s.NodeRoundTrips, *s.NodeCommands, s.RunSucceeded, verdict)
	} else {
		fmt.Fprintf(w, "redis per occurrence    node counters unavailable (node log level %s)\n", s.NodeLogLevel)
	}
	fmt.Fprintf(w, "redis-side per occ.     %.3f script calls, %.3f commands executed incl. inside scripts (INFO commandstats over the window)\n",
		perOcc(s.RedisScriptCalls, s.Succeeded), perOcc(s.RedisCommands, s.Succeeded))
	fmt.Fprintf(w, "cpu per occurrence      %.1f µs: nodes %.1f, plugins %.1f, redis %.1f   (fleet busy %.0f%% of %d CPUs; machine busy %.0f%%)\n",
		s.CPUTotal, s.CPUNodes, s.CPUPlugins, s.CPURedis, 100*s.CPUBusy, s.CPUs, 100*s.MachineBusy)
	fmt.Fprint(w, "node memory (RSS, MiB)  ")
	for _, n := range sortedKeys(s.NodeRSS) {
		fmt.Fprintf(w, " %s %.0f → %.0f → %.0f", n, s.NodeRSS[n][0], s.NodeRSS[n][1], s.NodeRSS[n][2])
	}
	fmt.Fprintln(w, "   (window start → middle → end)")
	fmt.Fprintf(w, "runs per node per second: max/mean %.2f (worst second %.2f; 1 is even, %d one node alone)\n", s.Spread, s.SpreadWorst, s.Nodes)
	fmt.Fprint(w, "runs per node          ")
	for _, n := range sortedKeys(s.RunsPerNode) {
		fmt.Fprintf(w, " %s %d", n, s.RunsPerNode[n])
	}
	fmt.Fprintln(w)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// writeJSON writes the summary to file.
func writeJSON(file string, s *summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}
