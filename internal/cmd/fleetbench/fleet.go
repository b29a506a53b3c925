package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/redistest"
)

// namespace is the fleet's namespace in the job file.
const namespace = "bench"

// settle is how long the nodes keep running after the window, so that the occurrences due
// in its last second run before the nodes stop.
const settle = 2 * time.Second

// measure starts the fleet, measures one window and returns its summary.
func measure(ctx context.Context, o options, logger *slog.Logger) (*summary, error) {
	dir, err := os.MkdirTemp("", "fleetbench-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	if o.Keep {
		logger.Info("keeping the temporary directory", "dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	root, err := fleettest.ModuleRoot()
	if err != nil {
		return nil, fmt.Errorf("find the module root: %w", err)
	}
	logger.Info("building the runner")
	bin, err := fleettest.BuildRunner(root, dir)
	if err != nil {
		return nil, err
	}

	srv, err := redistest.Launch(o.RedisServer, dir)
	if err != nil {
		return nil, err
	}
	defer srv.Kill()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	server, err := infoSection(ctx, rdb, "server")
	if err != nil {
		return nil, err
	}
	redisPid, err := strconv.Atoi(server["process_id"])
	if err != nil {
		return nil, fmt.Errorf("redis INFO server: process_id %q: %w", server["process_id"], err)
	}

	jobs := jobNames(o.Jobs)
	conf := filepath.Join(dir, "jobs.hcl")
	if err := os.WriteFile(conf, []byte(jobFile(jobs)), 0o644); err != nil {
		return nil, fmt.Errorf("write job file: %w", err)
	}

	var nodes []*fleettest.Node
	defer func() { stopNodes(nodes, logger) }() // on an early return; a no-op after the stop below
	args := []string{"-log-level", o.NodeLog}
	if o.Concurrency > 0 {
		args = append(args, "-concurrency", strconv.Itoa(o.Concurrency))
	}
	for i := range o.Nodes {
		name := fmt.Sprintf("node-%d", i+1)
		n, err := fleettest.StartNode(fleettest.NodeConfig{
			Bin: bin, Name: name, Configs: []string{conf}, RedisURL: srv.URL(),
			LogPath: filepath.Join(dir, name+".log"), Args: args,
		})
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	logger.Info("fleet started", "nodes", o.Nodes, "jobs", o.Jobs, "redis", srv.Addr())

	q := queue.New(rdb, queue.Config{Namespace: namespace})
	if err := waitFirstRun(ctx, q, jobs[0], nodes); err != nil {
		return nil, err
	}
	tick, err := clockTick()
	if err != nil {
		return nil, err
	}

	// The window starts on a whole second, after the warm-up.
	t0 := time.Now().Add(o.Warmup).Truncate(time.Second).Add(time.Second)
	t1 := t0.Add(o.Duration)
	logger.Info("warming up", "window_start", t0.Format(time.TimeOnly), "window_end", t1.Format(time.TimeOnly))
	if err := sleepUntil(ctx, t0); err != nil {
		return nil, err
	}
	cpu0, err := sampleCPU(nodes, redisPid)
	if err != nil {
		return nil, err
	}
	rss0, err := sampleRSS(nodes)
	if err != nil {
		return nil, err
	}
	cmd0, err := commandStats(ctx, rdb)
	if err != nil {
		return nil, err
	}
	if err := sleepUntil(ctx, t0.Add(o.Duration/2)); err != nil {
		return nil, err
	}
	rssMid, err := sampleRSS(nodes)
	if err != nil {
		return nil, err
	}
	if err := sleepUntil(ctx, t1); err != nil {
		return nil, err
	}
	cpu1, err := sampleCPU(nodes, redisPid)
	if err != nil {
		return nil, err
	}
	rss1, err := sampleRSS(nodes)
	if err != nil {
		return nil, err
	}
	cmd1, err := commandStats(ctx, rdb)
	if err != nil {
		return nil, err
	}
	if err := sleepUntil(ctx, t1.Add(settle)); err != nil {
		return nil, err
	}
	logger.Info("window over; stopping the nodes")
	if err := stopNodes(nodes, logger); err != nil {
		return nil, err
	}

	sum := &summary{
		Jobs: o.Jobs, Nodes: o.Nodes, CPUs: runtime.NumCPU(),
		Warmup: o.Warmup.String(), Window: o.Duration.String(),
		GoVersion: runtime.Version(), RedisVersion: server["redis_version"],
		NodeLogLevel: o.NodeLog,
	}
	if err := sum.addNodeCounters(nodes); err != nil {
		logger.Warn("node-side Redis counters unavailable", "err", err)
	}
	logger.Info("reading history", "jobs", len(jobs))
	hist, err := readHistory(ctx, q, jobs)
	if err != nil {
		return nil, err
	}
	sum.analyse(hist, jobs, t0, t1)
	sum.addCPU(cpu0, cpu1, tick, logger)
	sum.NodeRSS = map[string][3]float64{}
	for name, r := range rss0 {
		sum.NodeRSS[name] = [3]float64{r, rssMid[name], rss1[name]}
	}
	sum.addCommandStats(cmd0, cmd1)
	return sum, nil
}

// jobNames names n jobs so that they sort in order.
func jobNames(n int) []string {
	w := len(strconv.Itoa(n))
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("bench-%0*d", w, i+1)
	}
	return out
}

// jobFile is the HCL of the fleet: every job runs the noop handler every second.
func jobFile(jobs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "runner {\n  namespace = %q\n  lease     = \"10s\"\n}\n", namespace)
	for _, j := range jobs {
		fmt.Fprintf(&b, "\njob %q {\n  schedule = \"* * * * * *\"\n  handler \"noop\" {}\n}\n", j)
	}
	return b.String()
}

// waitFirstRun waits until job has a run record: the fleet is up and running.
func waitFirstRun(ctx context.Context, q *queue.Queue, job string, nodes []*fleettest.Node) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, n := range nodes {
			select {
			case <-n.Exited():
				return fmt.Errorf("node %s exited during start-up: %w; its log:\n%s", n.Name, n.Wait(0), tail(n.Log(), 20))
			default:
			}
		}
		recs, err := q.History(ctx, job, 1)
		if err != nil {
			return fmt.Errorf("wait for the first run: %w", err)
		}
		if len(recs) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("no run recorded 60s after the nodes started")
		}
		if err := sleepUntil(ctx, time.Now().Add(100*time.Millisecond)); err != nil {
			return err
		}
	}
}

// stopNodes stops every node at once (SIGTERM, then SIGKILL after a grace period).
func stopNodes(nodes []*fleettest.Node, logger *slog.Logger) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			if err := n.Stop(30 * time.Second); err != nil {
				errs[i] = fmt.Errorf("stop node %s: %w", n.Name, err)
				logger.Warn("node did not stop cleanly", "node", n.Name, "err", err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// nodeCounters matches the Redis counters in a node's "node stopped" log line.
var nodeCounters = regexp.MustCompile(`msg="node stopped".* redis_round_trips=(\d+) redis_commands=(\d+)`)

// addNodeCounters sums the Redis counters the nodes logged when they stopped.
func (s *summary) addNodeCounters(nodes []*fleettest.Node) error {
	var trips, cmds int64
	for _, n := range nodes {
		m := nodeCounters.FindStringSubmatch(n.Log())
		if m == nil {
			return fmt.Errorf("node %s logged no Redis counters (they are logged at info level; -node-log-level is %s)", n.Name, s.NodeLogLevel)
		}
		t, _ := strconv.ParseInt(m[1], 10, 64)
		c, _ := strconv.ParseInt(m[2], 10, 64)
		trips, cmds = trips+t, cmds+c
	}
	s.NodeRoundTrips, s.NodeCommands = &trips, &cmds
	return nil
}

// readHistory reads every job's run records. A full history may have lost records, so it
// is an error.
func readHistory(ctx context.Context, q *queue.Queue, jobs []string) ([]queue.Record, error) {
	var out []queue.Record
	for _, j := range jobs {
		recs, err := q.History(ctx, j, historyLimit)
		if err != nil {
			return nil, err
		}
		if len(recs) >= historyLimit {
			return nil, fmt.Errorf("history of %s holds %d records, its limit: older ones may be lost (shorten -warmup or -duration)", j, len(recs))
		}
		out = append(out, recs...)
	}
	return out, nil
}

// infoSection returns the fields of one section of Redis' INFO.
func infoSection(ctx context.Context, rdb *redis.Client, section string) (map[string]string, error) {
	raw, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return nil, fmt.Errorf("redis INFO %s: %w", section, err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(raw, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out, nil
}

// commandStats returns the calls per command from INFO commandstats.
func commandStats(ctx context.Context, rdb *redis.Client) (map[string]int64, error) {
	sec, err := infoSection(ctx, rdb, "commandstats")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for k, v := range sec {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		for f := range strings.SplitSeq(v, ",") {
			if n, ok := strings.CutPrefix(f, "calls="); ok {
				c, err := strconv.ParseInt(n, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("redis INFO commandstats: %s: %w", k, err)
				}
				out[name] = c
			}
		}
	}
	return out, nil
}

// sleepUntil waits until t or until ctx is done.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	case <-timer.C:
		return nil
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
