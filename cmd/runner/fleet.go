package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/fleet"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/redisconn"
)

// fleetFlags are the flags every command that looks at a running fleet takes, the same way:
// where the job files are (they name the namespace), which Redis, and how to print.
type fleetFlags struct {
	configs   stringList
	redis     redisFlags
	namespace string
	json      bool
}

func (f *fleetFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.configs, "config", "job file or directory of *.hcl files (repeatable); names the namespace")
	f.redis.register(fs, "")
	fs.StringVar(&f.namespace, "namespace", "", "the fleet's namespace (default: the job files')")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of a table")
}

// redisFlags say how to reach the fleet's Redis, the same way for every command.
type redisFlags struct {
	url                  string
	passwordFile         string
	sentinelPasswordFile string
	tls                  redisconn.TLSFiles
}

func (f *redisFlags) register(fs *flag.FlagSet, noURL string) {
	fs.StringVar(&f.url, "redis", os.Getenv("CRONFLEET_REDIS_URL"),
		"Redis URL: redis://[user:pass@]host:port/db, rediss://…, redis-sentinel://h1:p1,h2:p2/db?master=NAME or redis-cluster://h1:p1,h2:p2 (default $CRONFLEET_REDIS_URL"+noURL+")")
	fs.StringVar(&f.passwordFile, "redis-password-file", "", "file holding the Redis password, instead of the URL (default: $CRONFLEET_REDIS_PASSWORD)")
	fs.StringVar(&f.sentinelPasswordFile, "redis-sentinel-password-file", "", "file holding the sentinels' password (default: the URL's sentinel_password, or $CRONFLEET_REDIS_SENTINEL_PASSWORD)")
	fs.StringVar(&f.tls.CA, "redis-tls-ca", "", "PEM file of the CA that signed Redis' certificate (rediss://; default: runner { redis_tls_ca }, else the system's roots)")
	fs.StringVar(&f.tls.Cert, "redis-tls-cert", "", "PEM client certificate for Redis (rediss://; default: runner { redis_tls_cert })")
	fs.StringVar(&f.tls.Key, "redis-tls-key", "", "PEM key of -redis-tls-cert (default: runner { redis_tls_key })")
}

// open connects to Redis; cfg, if not nil, gives the TLS files the flags leave unset.
func (f *redisFlags) open(cfg *config.Config) (redis.UniversalClient, error) {
	s := redisconn.Settings{
		URL:                  f.url,
		PasswordFile:         f.passwordFile,
		Password:             os.Getenv("CRONFLEET_REDIS_PASSWORD"),
		SentinelPasswordFile: f.sentinelPasswordFile,
		SentinelPassword:     os.Getenv("CRONFLEET_REDIS_SENTINEL_PASSWORD"),
		TLS:                  f.tls,
	}
	if cfg != nil {
		if s.TLS.CA == "" {
			s.TLS.CA = cfg.Runner.RedisTLS.CA
		}
		if s.TLS.Cert == "" && s.TLS.Key == "" {
			s.TLS.Cert, s.TLS.Key = cfg.Runner.RedisTLS.Cert, cfg.Runner.RedisTLS.Key
		}
	}
	rdb, _, err := redisconn.Open(s)
	return rdb, err
}

// fleetView is what a fleet command reads: the job files' settings and the fleet's agenda.
type fleetView struct {
	cfg   *config.Config // nil when only -namespace was given
	fleet *fleet.Fleet
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
	if f.redis.url == "" {
		fmt.Fprintf(stderr, "runner %s: give -redis URL or set CRONFLEET_REDIS_URL: the fleet's state is in its Redis\n", cmd)
		return nil, exitError{2}
	}
	rdb, err := f.redis.open(cfg)
	if err != nil {
		return nil, err
	}
	lease := config.DefaultLease
	if cfg != nil {
		lease = cfg.Runner.Lease
	}
	// A person waits for these commands, not a lease: give Redis (and a Cluster client
	// finding its way around a dead node) longer than a node's calls get.
	q := queue.New(rdb, queue.Config{Namespace: ns, Lease: lease, CallTimeout: cliCallTimeout})
	return &fleetView{cfg: cfg, fleet: newFleet(q, cfg, stderr), close: func() { _ = rdb.Close() }}, nil
}

// newFleet reads and steers the fleet through store, for a command whose job files are cfg
// (nil when not given).
func newFleet(store fleet.Store, cfg *config.Config, stderr io.Writer) *fleet.Fleet {
	return fleet.New(store, fleet.Config{
		Jobs:   func() *config.Config { return cfg },
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}

// cliActor is who acts from the command line.
func cliActor() fleet.Actor { return fleet.Actor{By: whoami(), Via: "cli"} }

// inputError reports a mistake in what the command asked, as a usage error.
func inputError(cmd string, err error, stderr io.Writer) error {
	if !fleet.IsInput(err) {
		return err
	}
	fmt.Fprintf(stderr, "runner %s: %v\n", cmd, err)
	var ie *fleet.InputError
	if errors.As(err, &ie) && ie.NotFound {
		return exitError{1}
	}
	return exitError{2}
}

// cliCallTimeout bounds each Redis call of a fleet command.
const cliCallTimeout = 5 * time.Second

// version is the runner's version as the Go toolchain recorded it: a module version for a
// released build, "devel" for one built from a source tree.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
