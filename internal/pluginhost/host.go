package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cronfleet/cronfleet/internal/pluginwire"
	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

var (
	// ErrUnknownPlugin is returned by Run for a name that is neither a
	// builtin nor an executable in Config.Dir.
	ErrUnknownPlugin = errors.New("pluginhost: unknown plugin")
	// ErrPluginFailed wraps failures of the plugin process rather than of
	// the handler: it would not start, crashed or broke the connection.
	ErrPluginFailed = errors.New("pluginhost: plugin failed")
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("pluginhost: closed")
	// ErrUntrusted is returned when a third-party plugin binary is refused: its checksum
	// differs from its pin, or others may write it.
	ErrUntrusted = errors.New("pluginhost: plugin refused")
)

// Config configures a Host. Zero durations take the defaults documented
// on each field.
type Config struct {
	// Dir holds third-party plugins: every executable file in it is a
	// plugin named after the file. Empty means none.
	Dir string
	// Builtins maps built-in plugin names to the argv that starts them
	// (the runner re-execs itself: {self, "plugin", "serve", "exec"}). A
	// builtin shadows a file of the same name in Dir.
	Builtins map[string][]string
	// Logger receives the host's and the plugins' logs; nil discards.
	Logger *slog.Logger
	// Env is added to every plugin's environment ("KEY=value"), on top of
	// PATH; nothing else of the runner's environment is passed.
	Env []string
	// StartTimeout bounds a plugin's start and handshake (default 10s).
	StartTimeout time.Duration
	// KillTimeout is how long a stopping plugin has between SIGTERM and
	// SIGKILL (default 10s). Keep it above the plugins' own shutdown grace
	// (plugin/sdk: 5s), so they can stop their jobs' processes.
	KillTimeout time.Duration
	// RestartBackoff is about the least time between two starts of a plugin
	// that failed once (default 250ms); it doubles, with jitter, with each
	// consecutive failure. A run that reaches its plugin resets it.
	RestartBackoff time.Duration
	// MaxRestartBackoff caps RestartBackoff's doubling, before jitter
	// (default 30s).
	MaxRestartBackoff time.Duration
	// MaxConcurrent limits the runs in flight per plugin name; a run
	// beyond the limit waits for a slot (or for its ctx). A missing or
	// non-positive entry means no limit.
	MaxConcurrent map[string]int
	// HealthInterval: a run or Schema call on a plugin process that has
	// not answered anything for this long first checks its health
	// (default 5s; negative disables the check).
	HealthInterval time.Duration
	// HealthTimeout bounds that health check (default 2s). A process that
	// does not answer in time is stopped and restarted; the run fails with
	// ErrPluginFailed.
	HealthTimeout time.Duration
	// Pinned declares third-party plugins by path, and pins those with a
	// checksum (the job files' plugin blocks). It takes precedence over
	// Dir; builtins take precedence over both.
	Pinned map[string]Pin
	// AllowWritable lets third-party plugin binaries run that others than
	// the runner's user or root could replace: writable by group or world,
	// owned by another user, or in such a directory (refused by default:
	// anyone who can replace one can run code as the runner).
	AllowWritable bool
	// Metrics counts plugin restarts; nil counts nothing.
	Metrics Metrics
}

// Metrics is what a Host reports for monitoring: internal/metrics implements it.
type Metrics interface {
	// PluginRestarted counts a plugin process taken out of service because it failed
	// (it exited, failed its health check, broke its connection): the next run of the
	// plugin starts a new one.
	PluginRestarted(plugin string)
}

// noMetrics is the Metrics of a Host given none.
type noMetrics struct{}

func (noMetrics) PluginRestarted(string) {}

// Host runs plugin processes for a runner node. Its methods are safe for
// concurrent use.
type Host struct {
	cfg  Config
	log  *slog.Logger
	done chan struct{} // closed by Close

	mu          sync.Mutex
	closed      bool
	supervisors map[string]*supervisor

	stopping sync.WaitGroup // retired processes being stopped; Close waits for them
}

// New returns a Host; it starts no process until the first Run.
func New(cfg Config) *Host {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.KillTimeout <= 0 {
		cfg.KillTimeout = 10 * time.Second
	}
	if cfg.RestartBackoff <= 0 {
		cfg.RestartBackoff = 250 * time.Millisecond
	}
	if cfg.MaxRestartBackoff <= 0 {
		cfg.MaxRestartBackoff = 30 * time.Second
	}
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = 5 * time.Second
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 2 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	return &Host{cfg: cfg, log: cfg.Logger, done: make(chan struct{}), supervisors: map[string]*supervisor{}}
}

// Has reports whether name is a known plugin: a builtin or an executable
// regular file in Config.Dir.
func (h *Host) Has(name string) bool {
	_, ok := h.argv(name)
	return ok
}

func (h *Host) argv(name string) ([]string, bool) {
	if argv, ok := h.cfg.Builtins[name]; ok && len(argv) > 0 {
		return argv, true
	}
	if pin, ok := h.cfg.Pinned[name]; ok && pin.Path != "" {
		return []string{pin.Path}, true
	}
	if h.cfg.Dir == "" || name == "" || strings.HasPrefix(name, ".") || strings.ContainsAny(name, `/\`) {
		return nil, false
	}
	path := filepath.Join(h.cfg.Dir, name)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, false
	}
	return []string{path}, true
}

// Run is RunAt for a run that may start at once.
func (h *Host) Run(ctx context.Context, plugin string, run *sdk.Run, output func(line string)) (*sdk.Result, error) {
	return h.RunAt(ctx, plugin, run, time.Time{}, output)
}

// RunAt runs one occurrence on the named plugin, not before startAt (a
// time.Now reading: its monotonic clock counts), calling output for every
// output line while it runs, and returns the handler's result.
//
// The request goes to the plugin at once, and the plugin waits for the rest
// itself (RunRequest.start_at_monotonic_ns), so that many runs due at one instant start
// together instead of queueing behind their own dispatch.
//
// The error wraps ctx's error when ctx ended the run, ErrPluginFailed when
// the plugin process failed (it would not start, crashed, or failed its
// health check), and otherwise carries the handler's error message (the
// result may then be non-nil too, e.g. with an exit code). sdk.IsPermanent
// reports whether the handler marked its error with sdk.Permanent: retrying
// will not help.
//
// With a Config.MaxConcurrent limit for the plugin, RunAt first waits for a
// slot, giving up when ctx is done.
func (h *Host) RunAt(ctx context.Context, plugin string, run *sdk.Run, startAt time.Time, output func(line string)) (*sdk.Result, error) {
	if run == nil {
		return nil, errors.New("pluginhost: nil run")
	}
	s, err := h.supervisor(plugin)
	if err != nil {
		return nil, err
	}
	release, err := s.acquire(ctx, h.done)
	if err != nil {
		return nil, err
	}
	defer release()
	req := toProto(run)
	res, err := h.runOnce(ctx, s, req, startAt, output)
	if errors.Is(err, errNotStarted) {
		// The process refused the run without starting it (it is shutting down, e.g.
		// after its watchdog gave up on a handler ignoring cancellation): send it to a
		// fresh process. Safe, because no handler saw it.
		res, err = h.runOnce(ctx, s, req, startAt, output)
	}
	return res, err
}

// errNotStarted marks a run that a plugin process refused before any handler saw it.
var errNotStarted = errors.New("the plugin refused the run without starting it")

// runOnce sends req to s's current process.
func (h *Host) runOnce(ctx context.Context, s *supervisor, req *pb.RunRequest, startAt time.Time, output func(line string)) (*sdk.Result, error) {
	p, err := h.ready(ctx, s)
	if err != nil {
		return nil, err
	}
	res, err := p.handler.Run(ctx, req, startAt, output)
	if err != nil {
		switch {
		case ctxEnded(ctx, err):
			return nil, fmt.Errorf("pluginhost: %s: %w", s.name, ctx.Err())
		case errors.Is(err, pluginwire.ErrUnsendable):
			return nil, sdk.Permanent(fmt.Errorf("pluginhost: %s: %w", s.name, err))
		case status.Code(err) == codes.Aborted:
			h.retire(s, p, "plugin is shutting down and refused a run; restarting it", nil)
			return nil, fmt.Errorf("%w: %s: %w: %w", ErrPluginFailed, s.name, errNotStarted, err)
		}
		return nil, h.callFailed(s, p, err)
	}
	p.touch()
	s.reached()
	return runResult(ctx, s.name, res)
}

// runResult is what RunAt returns for the result res of a run of plugin under ctx.
func runResult(ctx context.Context, plugin string, res *pb.RunResult) (*sdk.Result, error) {
	out := fromProto(res)
	if res.GetHasError() {
		if ctxEndedRun(ctx) {
			// The handler failed because its ctx ended: say so, so that
			// the caller sees a timeout or a cancellation as such.
			return out, fmt.Errorf("pluginhost: %s: %w: %s", plugin, ctx.Err(), res.GetError())
		}
		err := fmt.Errorf("pluginhost: %s: %s", plugin, res.GetError())
		if res.GetPermanent() {
			err = sdk.Permanent(err)
		}
		return out, err
	}
	return out, nil
}

// Schema returns the schema of the named plugin's handler block, asking
// the plugin process (started if need be) once; the answer is cached until
// the process is replaced. Each attribute's Default is the json.RawMessage
// the plugin sent, or nil. An invalid schema (see sdk.Schema.Validate) is an
// error.
func (h *Host) Schema(ctx context.Context, plugin string) (sdk.Schema, error) {
	s, err := h.supervisor(plugin)
	if err != nil {
		return sdk.Schema{}, err
	}
	p, err := h.ready(ctx, s)
	if err != nil {
		return sdk.Schema{}, err
	}
	p.schemaMu.Lock()
	defer p.schemaMu.Unlock()
	if p.schema != nil {
		return *p.schema, nil
	}
	res, err := p.handler.Schema(ctx)
	if err != nil {
		if ctxEnded(ctx, err) {
			return sdk.Schema{}, fmt.Errorf("pluginhost: %s: schema: %w", plugin, ctx.Err())
		}
		if code := status.Code(err); code != codes.Unavailable && code != codes.Canceled && !p.exited() {
			// The plugin answered: it is alive but its schema is wrong.
			p.touch()
			return sdk.Schema{}, fmt.Errorf("pluginhost: %s: schema: %s", plugin, status.Convert(err).Message())
		}
		return sdk.Schema{}, h.callFailed(s, p, err)
	}
	p.touch()
	schema := schemaFromProto(res)
	if err := schema.Validate(); err != nil {
		return sdk.Schema{}, fmt.Errorf("pluginhost: %s: schema: %w", plugin, err)
	}
	p.schema = &schema
	return schema, nil
}

// Check asks the named plugin (started if need be) about one handler block's
// settings: the problems its own checks find beyond its schema, none for a
// plugin without checks.
func (h *Host) Check(ctx context.Context, plugin string, settings []byte) ([]sdk.Problem, error) {
	s, err := h.supervisor(plugin)
	if err != nil {
		return nil, err
	}
	p, err := h.ready(ctx, s)
	if err != nil {
		return nil, err
	}
	res, err := p.handler.Check(ctx, &pb.CheckRequest{Settings: settings})
	if err != nil {
		if ctxEnded(ctx, err) {
			return nil, fmt.Errorf("pluginhost: %s: check: %w", plugin, ctx.Err())
		}
		return nil, h.callFailed(s, p, err)
	}
	p.touch()
	out := make([]sdk.Problem, len(res.GetProblems()))
	for i, pr := range res.GetProblems() {
		out[i] = sdk.Problem{Attribute: pr.GetAttribute(), Message: pr.GetMessage()}
	}
	return out, nil
}

// Start starts the named plugin's process if it is not running (the
// handshake) and checks that it answers; the runner can use it to fail
// early, "runner plugin check" to test the handshake on its own.
func (h *Host) Start(ctx context.Context, plugin string) error {
	s, err := h.supervisor(plugin)
	if err != nil {
		return err
	}
	_, err = h.ready(ctx, s)
	return err
}

// Close stops every plugin process (SIGTERM to its group, SIGKILL after
// KillTimeout) and waits for them. Runs still in flight fail. Close is
// idempotent; Run after Close returns ErrClosed.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.done)
	sups := make([]*supervisor, 0, len(h.supervisors))
	for _, s := range h.supervisors {
		sups = append(sups, s)
	}
	h.mu.Unlock()
	for _, s := range sups {
		// A caller starting a process holds the lock until the start is over; done makes
		// every other caller give up, so this waits for starts only.
		s.lock <- struct{}{}
		p := s.cur
		<-s.lock
		if p != nil {
			h.retire(s, p, "", nil)
		}
	}
	h.stopping.Wait()
	return nil
}

// supervisor returns the supervisor of the named plugin, made on first use: the plugin
// is looked up (a stat of its file) once, not on every run.
func (h *Host) supervisor(name string) (*supervisor, error) {
	h.mu.Lock()
	s, closed := h.supervisors[name], h.closed
	h.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case s != nil:
		return s, nil
	}
	argv, ok := h.argv(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPlugin, name)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if s = h.supervisors[name]; s == nil {
		s = newSupervisor(name, argv, h.cfg)
		h.supervisors[name] = s
	}
	return s, nil
}

// ready returns s's process, started and, if it has been quiet for longer
// than HealthInterval, checked.
func (h *Host) ready(ctx context.Context, s *supervisor) (*process, error) {
	p, err := h.process(ctx, s)
	if err != nil {
		if errors.Is(err, ErrClosed) || errors.Is(err, ErrPluginFailed) {
			return nil, err
		}
		return nil, fmt.Errorf("pluginhost: %s: %w", s.name, err)
	}
	if h.cfg.HealthInterval < 0 || time.Since(p.lastAnswer()) < h.cfg.HealthInterval {
		return p, nil
	}
	pctx, cancel := context.WithTimeout(ctx, h.cfg.HealthTimeout)
	defer cancel()
	err = p.handler.Ping(pctx)
	if err == nil {
		p.touch()
		return p, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("pluginhost: %s: %w", s.name, ctx.Err())
	}
	// A stopped or deadlocked process.
	h.retire(s, p, "plugin failed its health check; restarting it", nil)
	return nil, fmt.Errorf("%w: %s: plugin process %d did not pass a health check within %s (%v); it is being restarted",
		ErrPluginFailed, s.name, p.pid(), h.cfg.HealthTimeout, err)
}

// callFailed handles a transport error of a call on p.
func (h *Host) callFailed(s *supervisor, p *process, err error) error {
	if status.Code(err) == codes.Unavailable || p.exited() {
		// The process is gone or going: retire it, so the next call starts a fresh one.
		st := p.exitStatus()
		h.retire(s, p, "plugin connection failed; restarting it", nil)
		if st != "" {
			err = fmt.Errorf("%w (plugin process %s)", err, st)
		}
	}
	return fmt.Errorf("%w: %s: %w", ErrPluginFailed, s.name, err)
}

// ctxEnded reports whether ctx ended the call that returned err. The run's
// deadline travels to the plugin, whose side may expire it a moment before
// ctx's own timer fires: the call then fails with DeadlineExceeded while
// ctx.Err() is still nil, and ctxEnded waits for ctx to catch up.
func ctxEnded(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	if _, ok := ctx.Deadline(); !ok || status.Code(err) != codes.DeadlineExceeded {
		return false
	}
	<-ctx.Done()
	return true
}

// deadlineSkew bounds how much earlier than ctx the plugin's side of a run
// may see ctx's deadline expire (the difference is the two processes' reading
// of one clock, and the transit time).
const deadlineSkew = 50 * time.Millisecond

// ctxEndedRun reports whether ctx has ended, or is about to end by its
// deadline, such that a handler error that arrived may be the plugin's
// view of that end; if so it waits for ctx to end.
func ctxEndedRun(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > deadlineSkew {
		return false
	}
	<-ctx.Done()
	return true
}
