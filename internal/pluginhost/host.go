package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

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
	// RestartBackoff is the least time between two starts of a plugin
	// that failed once (default 250ms); it doubles with each consecutive
	// failure. A run that reaches its plugin resets the count.
	RestartBackoff time.Duration
	// MaxRestartBackoff caps RestartBackoff's doubling (default 30s).
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
	// AllowWritable lets group- or world-writable third-party plugin
	// binaries run (refused by default: anyone who can write one can run
	// code as the runner).
	AllowWritable bool
}

// Host runs plugin processes for a runner node. Its methods are safe for
// concurrent use.
type Host struct {
	cfg  Config
	log  *slog.Logger
	done chan struct{} // closed by Close

	mu     sync.Mutex
	closed bool
	procs  map[string]*proc

	stopping sync.WaitGroup // processes being stopped apart from any run; Close waits
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
	return &Host{cfg: cfg, log: cfg.Logger, done: make(chan struct{}), procs: map[string]*proc{}}
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

// Run runs one occurrence on the named plugin, calling output for every
// output line while it runs, and returns the handler's result. The error
// wraps ctx's error when ctx ended the run, ErrPluginFailed when the plugin
// process failed (it would not start, crashed, or failed its health check),
// and otherwise carries the handler's error message (the result may then be
// non-nil too, e.g. with an exit code). sdk.IsPermanent reports whether the
// handler marked its error with sdk.Permanent: retrying will not help.
//
// With a Config.MaxConcurrent limit for the plugin, Run first waits for a
// slot, giving up when ctx is done.
func (h *Host) Run(ctx context.Context, plugin string, run *sdk.Run, output func(line string)) (*sdk.Result, error) {
	return h.RunAt(ctx, plugin, run, time.Time{}, output)
}

// RunAt is Run for a run that must not start before startAt (a time.Now
// reading: its monotonic clock counts). The request goes to the plugin at
// once, and a plugin that honours start_at (plugin/sdk does, it says so
// in its schema) waits for the rest itself, so that many runs due at one
// instant start together instead of queueing behind their own dispatch; for
// other plugins the host waits before sending. Either way the handler never
// starts before startAt.
func (h *Host) RunAt(ctx context.Context, plugin string, run *sdk.Run, startAt time.Time, output func(line string)) (*sdk.Result, error) {
	if run == nil {
		return nil, errors.New("pluginhost: nil run")
	}
	p, err := h.proc(plugin)
	if err != nil {
		return nil, err
	}
	release, err := p.acquire(ctx, h)
	if err != nil {
		return nil, err
	}
	defer release()
	for try := 0; ; try++ {
		res, again, err := h.runOnce(ctx, p, run, startAt, output)
		if again && try == 0 {
			// The process refused the run without starting it (it is shutting down, e.g.
			// after its watchdog gave up on a handler ignoring cancellation): start a fresh
			// process and send it there. Safe, because the handler never saw it.
			continue
		}
		return res, err
	}
}

// runOnce sends run to p's current process. again reports a run that the process refused
// before starting it: it may be sent again to a fresh process.
func (h *Host) runOnce(ctx context.Context, p *proc, run *sdk.Run, startAt time.Time, output func(line string)) (_ *sdk.Result, again bool, _ error) {
	plugin := p.name
	c, err := h.ready(ctx, p)
	if err != nil {
		return nil, false, err
	}
	req := toProto(run)
	if time.Until(startAt) > 0 && !c.schemaKnown() {
		// A restarted process has not said yet whether it honours start_at.
		_, _ = h.Schema(ctx, plugin)
	}
	if wait := time.Until(startAt); wait > 0 {
		if c.honoursStartAt() {
			// The machine's clock, which the plugin reads too: the wall time that is wait
			// from now.
			req.StartAt = timestamppb.New(time.Now().Round(0).Add(wait))
		} else {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, false, fmt.Errorf("pluginhost: %s: %w", plugin, ctx.Err())
			}
		}
	}
	res, err := c.handler.Run(ctx, req, output)
	if err != nil {
		if errors.Is(err, pluginwire.ErrCancelLost) {
			// The handler may still be running, and past the run's StopWithin another
			// node may run the occurrence too: stopping the process cancels it.
			h.restart(p, c, "plugin did not take a run's cancellation", err)
		}
		if ctxEnded(ctx, err) {
			return nil, false, fmt.Errorf("pluginhost: %s: %w", plugin, ctx.Err())
		}
		notStarted := status.Code(err) == codes.Aborted
		if notStarted {
			p.failed(h, c)
		}
		return nil, notStarted, h.callFailed(p, c, err)
	}
	c.touch()
	p.failures.Store(0)
	out := fromProto(res)
	if res.GetHasError() {
		if ctxEndedRun(ctx) {
			// The handler failed because its ctx ended: say so, so that
			// the caller sees a timeout or a cancellation as such.
			return out, false, fmt.Errorf("pluginhost: %s: %w: %s", plugin, ctx.Err(), res.GetError())
		}
		err := fmt.Errorf("pluginhost: %s: %s", plugin, res.GetError())
		if res.GetPermanent() {
			err = sdk.Permanent(err)
		}
		return out, false, err
	}
	return out, false, nil
}

// Schema returns the schema of the named plugin's handler block, asking
// the plugin process (started if need be) once; the answer is cached until
// the process is replaced. An invalid schema (see sdk.Schema.Validate) is
// an error.
func (h *Host) Schema(ctx context.Context, plugin string) (sdk.Schema, error) {
	p, err := h.proc(plugin)
	if err != nil {
		return sdk.Schema{}, err
	}
	c, err := h.ready(ctx, p)
	if err != nil {
		return sdk.Schema{}, err
	}
	c.schemaMu.Lock()
	defer c.schemaMu.Unlock()
	if c.schema != nil {
		return *c.schema, nil
	}
	res, err := c.handler.Schema(ctx)
	if err != nil {
		if ctxEnded(ctx, err) {
			return sdk.Schema{}, fmt.Errorf("pluginhost: %s: schema: %w", plugin, ctx.Err())
		}
		if code := status.Code(err); code != codes.Unavailable && code != codes.Canceled && !c.exited() {
			// The plugin answered: it is alive but its schema is wrong.
			c.touch()
			return sdk.Schema{}, fmt.Errorf("pluginhost: %s: schema: %s", plugin, status.Convert(err).Message())
		}
		return sdk.Schema{}, h.callFailed(p, c, err)
	}
	c.touch()
	c.startAt.Store(res.GetHonoursStartAt())
	schema, err := schemaFromProto(res)
	if err == nil {
		err = schema.Validate()
	}
	if err != nil {
		return sdk.Schema{}, fmt.Errorf("pluginhost: %s: schema: %w", plugin, err)
	}
	c.schema = &schema
	return schema, nil
}

// Check asks the named plugin (started if need be) about one handler block's
// settings: the problems its own checks find beyond its schema, none for a
// plugin without checks (one that predates the Check call included).
func (h *Host) Check(ctx context.Context, plugin string, settings []byte) ([]sdk.Problem, error) {
	p, err := h.proc(plugin)
	if err != nil {
		return nil, err
	}
	c, err := h.ready(ctx, p)
	if err != nil {
		return nil, err
	}
	res, err := c.handler.Check(ctx, &pb.CheckRequest{Settings: settings})
	if err != nil {
		if ctxEnded(ctx, err) {
			return nil, fmt.Errorf("pluginhost: %s: check: %w", plugin, ctx.Err())
		}
		return nil, h.callFailed(p, c, err)
	}
	c.touch()
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
	p, err := h.proc(plugin)
	if err != nil {
		return err
	}
	_, err = h.ready(ctx, p)
	return err
}

// ready returns p's process, started and, if it has been quiet for longer
// than HealthInterval, checked.
func (h *Host) ready(ctx context.Context, p *proc) (*conn, error) {
	c, err := p.get(ctx, h)
	if err != nil {
		if errors.Is(err, ErrClosed) || errors.Is(err, ErrPluginFailed) {
			return nil, err
		}
		return nil, fmt.Errorf("pluginhost: %s: %w", p.name, err)
	}
	if h.cfg.HealthInterval < 0 || time.Since(c.lastOK()) < h.cfg.HealthInterval {
		return c, nil
	}
	pctx, cancel := context.WithTimeout(ctx, h.cfg.HealthTimeout)
	defer cancel()
	err = c.handler.Ping(pctx)
	if err == nil {
		c.touch()
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("pluginhost: %s: %w", p.name, ctx.Err())
	}
	// A stopped or deadlocked process.
	h.restart(p, c, "plugin failed its health check", err)
	return nil, fmt.Errorf("%w: %s: plugin process %d did not pass a health check within %s (%v); it is being restarted",
		ErrPluginFailed, p.name, c.cmd.Process.Pid, h.cfg.HealthTimeout, err)
}

// ctxEnded reports whether ctx ended the call that returned err. gRPC
// sends ctx's deadline to the plugin, whose side may expire it a moment
// before ctx's own timer fires: the call then fails with DeadlineExceeded
// while ctx.Err() is still nil, and ctxEnded waits for ctx to catch up.
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

// deadlineSkew bounds how much earlier than ctx the plugin's side of a
// call may see ctx's deadline expire (gRPC sends the remaining time, so the
// difference is the transit time).
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

// callFailed handles a transport error of a call on c.
func (h *Host) callFailed(p *proc, c *conn, err error) error {
	if status.Code(err) == codes.Unavailable || c.exited() {
		// The process is gone or going: stop it for good, so the next
		// call starts a fresh one.
		p.failed(h, c)
		if st := c.exitStatus(); st != "" {
			err = fmt.Errorf("%w (plugin process %s)", err, st)
		}
	}
	return fmt.Errorf("%w: %s: %w", ErrPluginFailed, p.name, err)
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
	procs := make([]*proc, 0, len(h.procs))
	for _, p := range h.procs {
		procs = append(procs, p)
	}
	h.mu.Unlock()

	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() {
			p.lock <- struct{}{}
			defer func() { <-p.lock }()
			if p.cur != nil {
				h.stop(p.cur)
				p.cur = nil
			}
		})
	}
	wg.Wait()
	h.stopping.Wait()
	return nil
}

func (h *Host) proc(name string) (*proc, error) {
	argv, ok := h.argv(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPlugin, name)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	p := h.procs[name]
	if p == nil {
		p = &proc{name: name, argv: argv, lock: make(chan struct{}, 1)}
		if n := h.cfg.MaxConcurrent[name]; n > 0 {
			p.slots = make(chan struct{}, n)
		}
		h.procs[name] = p
	}
	return p, nil
}

// proc is one plugin and its current process, if any.
type proc struct {
	name     string
	argv     []string
	lock     chan struct{} // a mutex that waiting callers can abandon (ctx)
	slots    chan struct{} // MaxConcurrent; nil for no limit
	failures atomic.Int32  // consecutive failures, for the restart backoff

	// Guarded by lock.
	cur       *conn
	lastStart time.Time
}

// acquire takes one of p's run slots, if p is limited.
func (p *proc) acquire(ctx context.Context, h *Host) (release func(), err error) {
	if p.slots == nil {
		return func() {}, nil
	}
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("pluginhost: %s: waiting for one of %d run slots: %w", p.name, cap(p.slots), ctx.Err())
	case <-h.done:
		return nil, ErrClosed
	}
}

// conn is one running plugin process.
type conn struct {
	client  *plugin.Client
	cmd     *exec.Cmd
	handler pluginwire.Client
	ok      atomic.Int64 // unix nanoseconds of the last answer from the process

	schemaMu sync.Mutex
	schema   *sdk.Schema // cached
	// startAt: the plugin said (in its schema) that it honours
	// RunRequest.start_at; unknown until Schema was asked.
	startAt atomic.Bool
}

func (c *conn) touch()            { c.ok.Store(time.Now().UnixNano()) }
func (c *conn) lastOK() time.Time { return time.Unix(0, c.ok.Load()) }

func (c *conn) exited() bool { return c.client.Exited() }

// exitStatus describes how the process ended, once go-plugin reaped it.
func (c *conn) exitStatus() string {
	if !c.exited() || c.cmd.ProcessState == nil {
		return ""
	}
	return c.cmd.ProcessState.String()
}

// get returns the running process, starting one if there is none.
func (p *proc) get(ctx context.Context, h *Host) (*conn, error) {
	select {
	case p.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-h.done:
		return nil, ErrClosed
	}
	defer func() { <-p.lock }()
	select {
	case <-h.done:
		return nil, ErrClosed
	default:
	}

	if p.cur != nil && !p.cur.exited() {
		return p.cur, nil
	}
	if p.cur != nil {
		h.log.Warn("plugin process exited; restarting", "plugin", p.name, "status", p.cur.exitStatus())
		h.stop(p.cur)
		p.cur = nil
		p.failures.Add(1)
	}
	if n := p.failures.Load(); n > 0 {
		wait := h.cfg.RestartBackoff << min(n-1, 16)
		wait = min(wait, h.cfg.MaxRestartBackoff) - time.Since(p.lastStart)
		if wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-h.done:
				return nil, ErrClosed
			}
		}
	}
	p.lastStart = time.Now()
	c, err := h.start(p.name, p.argv)
	if err != nil {
		p.failures.Add(1)
		return nil, err
	}
	p.cur = c
	return c, nil
}

// restart replaces p's process c, unless it was replaced already: the next call starts a
// fresh one, and c is stopped in the background, so that neither the caller nor the callers
// queued behind p.lock wait for its KillTimeout.
func (h *Host) restart(p *proc, c *conn, why string, err error) {
	if p.detach(c) {
		h.log.Warn(why+"; restarting it", "plugin", p.name, "pid", c.cmd.Process.Pid, "err", err)
		h.stopping.Go(func() { h.stop(c) })
	}
}

// detach forgets c, unless it was replaced already; it reports whether the
// caller is to stop c.
func (p *proc) detach(c *conn) bool {
	p.lock <- struct{}{}
	defer func() { <-p.lock }()
	if p.cur != c {
		return false
	}
	p.cur = nil
	p.failures.Add(1)
	return true
}

// failed stops c after a run saw it fail, unless it was replaced already.
func (p *proc) failed(h *Host, c *conn) {
	p.lock <- struct{}{}
	defer func() { <-p.lock }()
	if p.cur == c {
		h.stop(c)
		p.cur = nil
		p.failures.Add(1)
	}
}

func (h *Host) start(name string, argv []string) (*conn, error) {
	log := h.log.With("plugin", name)
	var secure *plugin.SecureConfig
	if _, builtin := h.cfg.Builtins[name]; !builtin {
		var err error
		if secure, err = h.trust(name, argv[0]); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = h.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: pluginwire.Handshake(),
		Plugins:         pluginwire.HostPluginSet(),
		Cmd:             cmd,
		SkipHostEnv:     true,
		SecureConfig:    secure,
		// Mutual TLS with a certificate made for this process: nothing else on the machine
		// can talk to the plugin, nor pose as the runner.
		AutoMTLS:         true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  pluginwire.DialOptions(),
		StartTimeout:     h.cfg.StartTimeout,
		Logger:           newHCLogger(log),
		SyncStdout:       &lineLogger{log: log, level: slog.LevelInfo, attrs: []any{"stream", "stdout"}},
		SyncStderr:       &lineLogger{log: log, level: slog.LevelWarn, attrs: []any{"stream", "stderr"}},
	})
	c := &conn{client: client, cmd: cmd}
	rpc, err := client.Client()
	if err == nil {
		var raw any
		raw, err = rpc.Dispense(pluginwire.PluginName)
		if err == nil {
			var ok bool
			if c.handler, ok = raw.(pluginwire.Client); !ok {
				err = fmt.Errorf("dispensed %T", raw)
			}
		}
	}
	if err != nil {
		h.stop(c)
		return nil, fmt.Errorf("%w: %s: start: %w", ErrPluginFailed, name, pluginwire.CheckVersion(err))
	}
	c.touch() // the handshake was an answer
	log.Debug("plugin started", "pid", cmd.Process.Pid)
	return c, nil
}

// env is the plugins' whole environment; see the package doc.
func (h *Host) env() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	return append([]string{"PATH=" + path}, h.cfg.Env...)
}

// stop ends c's process group: SIGTERM, then SIGKILL after KillTimeout,
// then lets go-plugin reap the process and its goroutines.
func (h *Host) stop(c *conn) {
	if c.cmd.Process != nil {
		pgid := c.cmd.Process.Pid
		if !c.exited() {
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			// A stopped plugin (SIGSTOP, a debugger) handles SIGTERM only
			// once it runs again; it must, to stop its jobs' processes.
			_ = syscall.Kill(-pgid, syscall.SIGCONT)
			if !h.waitExit(c, h.cfg.KillTimeout) {
				h.log.Warn("plugin did not stop in time; killing it", "pid", pgid)
			}
		}
		// Leftovers of the group, and the leader if it ignored SIGTERM.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		h.waitExit(c, h.cfg.KillTimeout)
	}
	c.client.Kill()       // reaps the process, closes the connection
	if c.handler != nil { // nil when the start failed
		c.handler.Close()
	}
}

// waitExit reports whether c's process exited within d. go-plugin exposes
// the exit only as a flag, hence the polling.
func (h *Host) waitExit(c *conn, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !c.exited() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func (c *conn) honoursStartAt() bool { return c.startAt.Load() }

func (c *conn) schemaKnown() bool {
	c.schemaMu.Lock()
	defer c.schemaMu.Unlock()
	return c.schema != nil
}

func toProto(r *sdk.Run) *pb.RunRequest {
	req := &pb.RunRequest{
		Job:          r.Job,
		Attempt:      int32(r.Attempt),
		FencingToken: r.FencingToken,
		OccurrenceId: r.OccurrenceID,
		Node:         r.Node,
		Settings:     r.Settings,
		StopWithinMs: r.StopWithin.Milliseconds(),
	}
	if !r.ScheduledAt.IsZero() {
		req.ScheduledAt = timestamppb.New(r.ScheduledAt)
	}
	return req
}

func fromProto(r *pb.RunResult) *sdk.Result {
	return &sdk.Result{Message: r.GetMessage(), Metadata: r.GetMetadata(), Output: r.GetOutput()}
}

// schemaFromProto converts a plugin's wire schema back, decoding defaults
// as encoding/json does into an any (numbers are float64). A type that is
// not an sdk.Type is kept as is, for Validate to report.
func schemaFromProto(r *pb.SchemaResponse) (sdk.Schema, error) {
	var s sdk.Schema
	for _, pa := range r.GetAttributes() {
		a := sdk.Attribute{Name: pa.GetName(), Type: sdk.Type(pa.GetType()), Required: pa.GetRequired(), Description: pa.GetDescription()}
		if t, err := sdk.ParseType(pa.GetType()); err == nil {
			a.Type = t
		}
		if d := pa.GetDefaultJson(); len(d) > 0 {
			if err := json.Unmarshal(d, &a.Default); err != nil {
				return sdk.Schema{}, fmt.Errorf("default of %q: %w", pa.GetName(), err)
			}
		}
		s.Attributes = append(s.Attributes, a)
	}
	return s, nil
}
