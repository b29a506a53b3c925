package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/api"
	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/embedded"
	"github.com/cronfleet/cronfleet/internal/engine"
	"github.com/cronfleet/cronfleet/internal/fleet"
	"github.com/cronfleet/cronfleet/internal/gctune"
	"github.com/cronfleet/cronfleet/internal/metrics"
	"github.com/cronfleet/cronfleet/internal/pluginhost"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/redisconn"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runNode runs one node until SIGINT or SIGTERM, then drains.
func runNode(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var configs stringList
	fs.Var(&configs, "config", "job file or directory of *.hcl files (repeatable)")
	var rf redisFlags
	rf.register(fs, "; none: the embedded single-node store")
	node := fs.String("node", "", "node name in history and logs (default HOSTNAME-PID)")
	var labelFlags stringList
	fs.Var(&labelFlags, "label", "a label of this node, KEY=VALUE (repeatable), which jobs' constraint blocks select nodes by; the node's name is always the label \"node\"")
	pluginDir := fs.String("plugin-dir", "", "directory of third-party plugin binaries")
	concurrency := fs.Int("concurrency", 0, fmt.Sprintf("this node's capacity: the most runs it has going at once, counting those claimed ahead (default: the runner block's concurrency, else %d)", config.DefaultConcurrency))
	grace := fs.Duration("grace", 10*time.Second, "how long running handlers may finish after SIGTERM before they are cancelled")
	allowWritable := fs.Bool("allow-writable-plugins", false, "run plugin binaries that others than the runner's user or root could replace (unsafe)")
	allowEviction := fs.Bool("allow-eviction", false, "run even if Redis may evict keys (maxmemory-policy is not noeviction): unsafe")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	var hf httpFlags
	hf.register(fs)
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if len(configs) == 0 {
		fmt.Fprintln(stderr, "runner run: at least one -config PATH is required")
		return exitError{2}
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	// The HTTP flags are checked, and the port taken, before the job files are loaded: a
	// mistake there is reported at once, not after a large job set has been read.
	ln, httpCfg, err := hf.listen()
	if err != nil {
		return err
	}
	// The node's metrics are kept only when something serves them.
	var reg *prometheus.Registry
	var met *metrics.Metrics
	if ln != nil {
		defer ln.Close()
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		met = metrics.New(reg)
	}
	if *node == "" {
		host, _ := os.Hostname()
		*node = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	labels, err := config.ParseLabels(*node, labelFlags)
	if err != nil {
		return fmt.Errorf("-label: %w", err)
	}
	logger = logger.With("node", *node)
	redis.SetLogger(redisconn.Logger{Log: logger}) // see main

	cfg, host, err := load(configs, *pluginDir, pluginhost.Config{Logger: logger, AllowWritable: *allowWritable, Metrics: met}, stderr)
	if host != nil {
		// Plugins are closed after the run group returns, so none dies under running work.
		defer host.Close()
	}
	if err != nil {
		return err
	}
	gctune.Release()
	capacity, err := nodeCapacity(fs, *concurrency, cfg.Runner.Concurrency)
	if err != nil {
		return err
	}

	var g run.Group
	{
		execute, interrupt := run.SignalHandler(context.Background(), os.Interrupt, syscall.SIGTERM)
		g.Add(func() error {
			err := execute()
			var se *run.SignalError
			if errors.As(err, &se) {
				logger.Info("signal received: draining", "signal", se.Signal.String())
				return nil
			}
			return err
		}, interrupt)
	}

	var rdb redis.UniversalClient
	stopStore := func() {}
	skipEvictionCheck := *allowEviction
	if rf.url == "" {
		store, err := embedded.Start()
		if err != nil {
			return err
		}
		defer store.Close()
		logger.Warn("no Redis URL given: using the embedded in-memory store; this is a single node, and nothing survives a restart (give -redis or CRONFLEET_REDIS_URL for a fleet)",
			"addr", store.Addr())
		rdb = redis.NewClient(&redis.Options{Addr: store.Addr()})
		skipEvictionCheck = true // miniredis has no CONFIG and no eviction
		ctx, cancel := context.WithCancel(context.Background())
		// The store keeps ticking through the engine's drain; the engine actor stops it.
		g.Add(func() error { return store.Run(ctx) }, func(error) {})
		stopStore = cancel
	} else {
		if rdb, err = rf.open(cfg); err != nil {
			return err
		}
	}
	defer rdb.Close()
	stats := &redisStats{}
	rdb.AddHook(stats)

	// The guard can be turned off only to show, in a test, what it prevents.
	noGuard := os.Getenv("CRONFLEET_TEST_DISABLE_GUARD") == "1"
	if noGuard {
		logger.Warn("CRONFLEET_TEST_DISABLE_GUARD=1: the lost-state guard is off; a Redis that loses state will make this fleet replay and miss runs (tests only)")
	}
	// So can the handlers' own fence, only to show what it prevents.
	noFence := os.Getenv("CRONFLEET_TEST_DISABLE_SELF_FENCE") == "1"
	if noFence {
		logger.Warn("CRONFLEET_TEST_DISABLE_SELF_FENCE=1: plugins are not told their leases' fences; the handlers of a frozen node outlive its leases (tests only)")
	}
	// And the fair share of bursts, only to show what it changes.
	noFairShare := os.Getenv("CRONFLEET_TEST_DISABLE_FAIR_SHARE") == "1"
	if noFairShare {
		logger.Warn("CRONFLEET_TEST_DISABLE_FAIR_SHARE=1: this node claims whole bursts, whatever the other nodes' shares (tests only)")
	}
	// And the node's clock can be set wrong, to show that a wrong clock fires nothing early.
	now := time.Now
	if v := os.Getenv("CRONFLEET_TEST_CLOCK_SKEW"); v != "" {
		skew, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("CRONFLEET_TEST_CLOCK_SKEW: %w", err)
		}
		logger.Warn("CRONFLEET_TEST_CLOCK_SKEW: this node's clock reads wrong (tests only)", "skew", skew)
		now = func() time.Time { return time.Now().Add(skew) }
	}
	q := queue.New(rdb, queue.Config{Namespace: cfg.Runner.Namespace, Lease: cfg.Runner.Lease, Node: *node, DisableGuard: noGuard, Metrics: met})
	eng := engine.New(q, host, engine.Config{
		Node:          *node,
		Version:       version(),
		Jobs:          cfg.Jobs,
		Lease:         cfg.Runner.Lease,
		Concurrency:   capacity,
		Labels:        labels,
		Grace:         *grace,
		AllowEviction: skipEvictionCheck,
		Logger:        logger,

		Metrics:        met,
		NoHandlerFence: noFence,
		NoFairShare:    noFairShare,
		Now:            now,
	})
	{
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			defer stopStore()
			logger.Info("node started", "jobs", len(cfg.Jobs), "namespace", cfg.Runner.Namespace, "lease", cfg.Runner.Lease, "concurrency", capacity, "labels", labelText(labels))
			err := eng.Run(ctx)
			logger.Info("node stopped", "redis_round_trips", stats.roundTrips.Load(), "redis_commands", stats.commands.Load())
			return err
		}, func(error) { cancel() })
	}
	var cur atomic.Pointer[config.Config]
	cur.Store(cfg)
	{
		r := &reloader{paths: configs, host: host, eng: eng, log: logger, cur: &cur}
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return r.run(ctx) }, func(error) { cancel() })
	}
	if ln != nil {
		reg.MustRegister(metrics.NewFleet(q, metrics.FleetConfig{Logger: logger,
			Priorities: func() map[string]int { return config.Priorities(cur.Load().Jobs) }}))
		httpCfg.Node, httpCfg.Version = *node, version()
		srv, err := api.New(api.Deps{
			Fleet:   fleet.New(q, fleet.Config{Jobs: cur.Load, Logger: logger}),
			Ready:   func(ctx context.Context) error { return ping(ctx, rdb) },
			Output:  q,
			Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}),
			Logger:  logger,
		}, httpCfg)
		if err != nil {
			return err
		}
		logger.Info("serving HTTP: dashboard, JSON API and metrics", "addr", hf.url(ln))
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return srv.Run(ctx, ln) }, func(error) { cancel() })
	}
	return g.Run()
}

// nodeCapacity is the node's one capacity: the -concurrency flag when given, since an
// operator sizes a host on its command line, else the runner block's concurrency, else the
// default.
func nodeCapacity(fs *flag.FlagSet, flagValue, fileValue int) (int, error) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "concurrency" })
	switch {
	case given && (flagValue < 1 || flagValue > config.MaxConcurrency):
		return 0, fmt.Errorf("-concurrency %d: want 1 to %d", flagValue, config.MaxConcurrency)
	case given:
		return flagValue, nil
	case fileValue > 0:
		return fileValue, nil
	}
	return config.DefaultConcurrency, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}

// labelText is a node's labels as its log shows them: KEY=VALUE, sorted, comma-separated.
func labelText(labels map[string]string) string {
	var s []string
	for k, v := range labels {
		s = append(s, k+"="+v)
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}
