// Command fleetbench measures a real cronfleet fleet: several runner processes with the
// built-in noop plugin on a loopback redis-server of its own. It is a command, not a timed
// test, because its figures depend on the machine and are read by people, not asserted.
//
//	go run ./internal/cmd/fleetbench [-jobs 200] [-nodes 3] [-warmup 3s] [-duration 20s] [-out summary.json]
//
// # Method
//
// fleetbench builds cmd/runner into a temporary directory, starts redis-server on a free
// loopback port (no persistence), writes a job file of -jobs jobs that run every second
// (schedule "* * * * * *", handler "noop") and starts -nodes runners on it. Once the fleet
// has recorded its first run it waits -warmup, then measures a window of -duration that
// starts on a whole second: every job is due once per second of the window, so the window
// holds jobs × seconds expected occurrences. At both ends of the window it samples the CPU
// time (utime + stime from /proc/PID/stat) of every runner, of each runner's children (the
// plugin processes, which end with their node, so they are sampled while it runs) and of
// redis-server, and Redis' INFO commandstats. After the window it lets the last occurrences
// finish, stops the nodes with SIGTERM and reads every job's history from Redis.
//
// Over the occurrences scheduled inside the window it reports:
//
//   - duplicates: occurrences with more than one succeeded record, or more than one record
//     whose handler started (the exit status is 1 if there is any, anywhere in the run);
//   - misses: expected occurrences without a succeeded record (exit status 1 if any);
//   - lateness, from the scheduled time to the handler's start as the noop handler reports it
//     (metadata started_at_unix_nano): p50, p90, p99 and max, split into the node's part
//     (scheduled → the engine hands the run to the plugin host) and the plugin call's part;
//   - CPU per occurrence, split into nodes, plugins and Redis, next to the busy share of the
//     whole machine (/proc/stat): other work on a shared machine shows in the lateness;
//   - runs per node, and per second of the window the most runs one node took over the
//     mean per node (max/mean: 1 is an even spread, the node count is one node alone),
//     averaged over the window and at its worst second.
//
// Redis work per occurrence comes from two sides. The nodes count their own round trips (a
// pipeline is one) and commands and log them in their "node stopped" line, which is logged at
// info level; fleetbench sums them and divides by every succeeded run of the whole run
// (warm-up and drain included, since the counters are too). Redis' INFO commandstats over the
// window is the cross-check: it also counts the commands the Lua scripts run inside Redis, so
// it is reported as script calls and as all commands executed.
//
// The nodes log at -node-log-level, info by default because the "node stopped" line with the
// Redis counters is an info record. At info the nodes also log two lines per run;
// pass -node-log-level warn to measure without that cost (the node-side Redis counts are then
// unavailable and reported as such).
//
// A job's history keeps its latest 100 records, so -warmup plus -duration is capped at 90s:
// a longer run would lose the records of its first seconds. A job whose history is full is
// reported as an error rather than silently miscounted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries an exit code for an outcome already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func dispatch(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := benchCmd(ctx, args, stdout, stderr)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "fleetbench: %v\n", err)
		return 1
	}
}

// historyLimit is how many run records the queue keeps per job (queue.Config's default,
// which the runner uses).
const historyLimit = 100

// maxSpan caps warm-up plus window: the records of the whole run must fit in historyLimit
// records per job, with room for start-up and drain.
const maxSpan = 90 * time.Second

// options are fleetbench's flags.
type options struct {
	Jobs        int
	Nodes       int
	Warmup      time.Duration
	Duration    time.Duration
	RedisServer string
	NodeLog     string
	Concurrency int
	Out         string
	Keep        bool
}

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fleetbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.Jobs, "jobs", 200, "jobs, each due every second")
	fs.IntVar(&o.Nodes, "nodes", 3, "runner processes")
	fs.DurationVar(&o.Warmup, "warmup", 3*time.Second, "time between the fleet's first run and the measured window")
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "measured window (whole seconds)")
	fs.StringVar(&o.RedisServer, "redis-server", "", "redis-server binary (default: from PATH)")
	fs.StringVar(&o.NodeLog, "node-log-level", "info", "the nodes' -log-level; below info their Redis counters are not logged")
	fs.IntVar(&o.Concurrency, "concurrency", 0, "the nodes' -concurrency, their capacity (default: the runner's default)")
	fs.StringVar(&o.Out, "out", "", "also write the summary as JSON to this file")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory (job file, node logs)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	o.Duration = o.Duration.Truncate(time.Second)
	switch {
	case o.Jobs < 1 || o.Nodes < 1:
		fmt.Fprintln(stderr, "fleetbench: -jobs and -nodes must be at least 1")
		return exitError{2}
	case o.Duration < time.Second || o.Warmup < 0:
		fmt.Fprintln(stderr, "fleetbench: -duration must be at least 1s and -warmup not negative")
		return exitError{2}
	case o.Warmup+o.Duration > maxSpan:
		fmt.Fprintf(stderr, "fleetbench: -warmup + -duration must not exceed %s: a job keeps only its last %d run records\n", maxSpan, historyLimit)
		return exitError{2}
	}
	if o.RedisServer == "" {
		bin, err := exec.LookPath("redis-server")
		if err != nil {
			return fmt.Errorf("redis-server not on PATH (install it or pass -redis-server): %w", err)
		}
		o.RedisServer = bin
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	sum, err := measure(ctx, o, logger)
	if err != nil {
		return err
	}
	printSummary(stdout, sum)
	if o.Out != "" {
		if err := writeJSON(o.Out, sum); err != nil {
			return err
		}
	}
	if sum.Duplicates > 0 || sum.Misses > 0 || sum.RunDuplicates > 0 {
		return exitError{1}
	}
	return nil
}
