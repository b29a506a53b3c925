package sdk

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/cronfleet/cronfleet/internal/pluginwire"
)

// ErrFenced is the cause (context.Cause) of a handler's ctx that the plugin
// cancelled by itself at the run's fence: the runner did not renew the
// run's lease in time (see the package doc, Self-fencing).
var ErrFenced = pluginwire.ErrFenced

// ServeOption configures Serve.
type ServeOption func(*serveConfig)

type serveConfig struct {
	grace       time.Duration
	cancelGrace time.Duration
	level       slog.Level
	parentIv    time.Duration
}

// WithShutdownGrace sets how long Serve waits for running handlers to
// return after it cancelled them (default 5s). Keep it below the runner's
// kill timeout, or the runner kills the plugin first.
func WithShutdownGrace(d time.Duration) ServeOption {
	return func(c *serveConfig) { c.grace = d }
}

// WithCancelGrace sets how long a handler may take to return after its ctx
// was cancelled (default 10s; a run's StopWithin if that is shorter). A
// handler that takes longer is stuck: Serve logs an error naming its run,
// cancels every other handler, waits the shutdown grace and exits, so that
// the runner starts a fresh process on the next run. Zero or less disables
// the watchdog.
func WithCancelGrace(d time.Duration) ServeOption {
	return func(c *serveConfig) { c.cancelGrace = d }
}

// WithLogLevel sets the lowest level Run.Logger sends to the runner
// (default debug; the runner filters again by its own level).
func WithLogLevel(l slog.Level) ServeOption {
	return func(c *serveConfig) { c.level = l }
}

// Serve serves h to the runner that started this process and exits the
// process when the runner is gone or asks it to stop; it never returns.
// Call it from main. Run by hand (without the runner's handshake), it prints
// a short explanation and exits with status 1.
func Serve(h Handler, opts ...ServeOption) {
	os.Exit(serve(h, opts))
}

func serve(h Handler, opts []ServeOption) int {
	cfg := serveConfig{grace: 5 * time.Second, cancelGrace: 10 * time.Second, level: slog.LevelDebug, parentIv: 250 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}

	// Our stderr is a pipe read by the runner. Once the runner is dead,
	// which is when SIGTERM (Pdeathsig) or the parent watch below end the
	// plugin, the next log line goes to a pipe without a reader, and a Go
	// program writing to such a pipe on fd 1 or 2 dies of SIGPIPE unless it
	// asked for SIGPIPE itself: the plugin would die before stopping its
	// handlers, leaving their processes behind. Asking for SIGPIPE makes
	// that write fail with EPIPE instead. Notify, not Ignore: an ignored
	// signal stays ignored in the commands handlers start.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	// go-plugin replaces os.Stderr with a pipe once serving; logs must go
	// to the real stderr, which the host reads line by line.
	stderr := &lockedWriter{w: os.Stderr}
	log := slog.New(newLogHandler(stderr, cfg.level))

	// The root of the plugin process (see the package doc).
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	stuck := make(chan *Run, 1)
	srv := &server{h: h, log: log, base: base, cancelGrace: cfg.cancelGrace, burstHold: defaultBurstHold, stuck: func(r *Run) {
		select {
		case stuck <- r:
		default:
		}
	}}

	// Watch before serving, so the parent seen is the one that started us.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	defer signal.Stop(sigs)
	parentGone := watchParent(base, os.Getppid(), cfg.parentIv)

	served := make(chan struct{})
	go func() {
		defer close(served)
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: pluginwire.Handshake(),
			Plugins:         pluginwire.PluginSet(srv),
			GRPCServer:      pluginwire.NewServer,
			Logger: hclog.New(&hclog.LoggerOptions{
				Output:     stderr,
				JSONFormat: true,
				Level:      hclog.Info,
			}),
		})
	}()

	code := 0
	var stuckRun *Run
	select {
	case <-served:
		log.Debug("host closed the connection; shutting down")
	case s := <-sigs:
		log.Info("received signal; shutting down", "signal", s.String())
	case <-parentGone:
		log.Warn("host process is gone; shutting down")
	case stuckRun = <-stuck:
		code = 1
	}
	// Refuse new runs before saying anything: once the host reads the log line below it
	// may send a run at once, and that run must get Aborted (go to a fresh process), not
	// land on this dying one.
	srv.refuseNew()
	if stuckRun != nil {
		stuckRun.Logger().Error("handler ignored cancellation; exiting so that the runner restarts the plugin",
			"cancel_grace", cfg.cancelGrace.String())
	}
	cancel()
	done := make(chan struct{})
	go func() {
		srv.shutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(cfg.grace):
		log.Error("handlers did not return within the shutdown grace; exiting anyway", "grace", cfg.grace.String())
		return 1
	}
	return code
}

// watchParent closes the returned channel when the process' parent id is
// no longer ppid: the parent died and the process was re-parented.
func watchParent(ctx context.Context, ppid int, every time.Duration) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != ppid {
					close(gone)
					return
				}
			}
		}
	}()
	return gone
}
