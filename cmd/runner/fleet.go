package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// fleetFlags are the flags every command that looks at a running fleet takes, the same way:
// where the job files are (they name the namespace), which Redis, and how to print.
type fleetFlags struct {
	configs   stringList
	redisURL  string
	namespace string
	json      bool
}

func (f *fleetFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.configs, "config", "job file or directory of *.hcl files (repeatable); names the namespace")
	fs.StringVar(&f.redisURL, "redis", os.Getenv("CRONFLEET_REDIS_URL"), "Redis URL, e.g. redis://host:6379/0 (default $CRONFLEET_REDIS_URL)")
	fs.StringVar(&f.namespace, "namespace", "", "the fleet's namespace (default: the job files')")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of a table")
}

// fleetView is what a fleet command reads: the job files' settings and the fleet's agenda.
type fleetView struct {
	cfg   *config.Config // nil when only -namespace was given
	queue *queue.Queue
	close func()
}

// open loads the job files (printing their diagnostics to stderr) and connects to Redis.
func (f *fleetFlags) open(cmd string, stderr io.Writer) (*fleetView, error) {
	cfg, ns, err := f.jobs(cmd, stderr)
	if err != nil {
		return nil, err
	}
	return f.connect(cmd, stderr, cfg, ns)
}

// jobs loads the job files, if -config names any (printing their diagnostics to stderr),
// and says which namespace the command is about.
func (f *fleetFlags) jobs(cmd string, stderr io.Writer) (*config.Config, string, error) {
	var cfg *config.Config
	ns := f.namespace
	if len(f.configs) > 0 {
		c, src, diags := config.Load(f.configs...)
		if diags.HasErrors() {
			_ = src.WriteDiagnostics(stderr, diags)
			return nil, "", exitError{1}
		}
		cfg = c
		if ns == "" {
			ns = cfg.Runner.Namespace
		}
	}
	if ns == "" {
		fmt.Fprintf(stderr, "runner %s: give -config PATH (the job files name the namespace) or -namespace NAME\n", cmd)
		return nil, "", exitError{2}
	}
	return cfg, ns, nil
}

// connect opens the agenda of namespace ns in the fleet's Redis; cfg, if not nil, gives
// the lease.
func (f *fleetFlags) connect(cmd string, stderr io.Writer, cfg *config.Config, ns string) (*fleetView, error) {
	if f.redisURL == "" {
		fmt.Fprintf(stderr, "runner %s: give -redis URL or set CRONFLEET_REDIS_URL: the fleet's state is in its Redis\n", cmd)
		return nil, exitError{2}
	}
	rdb, err := newRedisClient(f.redisURL)
	if err != nil {
		return nil, err
	}
	lease := config.DefaultLease
	if cfg != nil {
		lease = cfg.Runner.Lease
	}
	return &fleetView{cfg: cfg, queue: queue.New(rdb, queue.Config{Namespace: ns, Lease: lease}), close: func() { _ = rdb.Close() }}, nil
}

// newRedisClient is the client of every command that talks to Redis, run included.
func newRedisClient(url string) (redis.UniversalClient, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse -redis %q: %w", redactURL(url), err)
	}
	opts.ContextTimeoutEnabled = true
	return redis.NewClient(opts), nil
}

// version is the runner's version as the Go toolchain recorded it: a module version for a
// released build, "devel" for one built from a source tree.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
