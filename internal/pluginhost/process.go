package pluginhost

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/cronfleet/cronfleet/internal/pluginwire"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// process is one running plugin process and the host's client of it.
type process struct {
	client  *plugin.Client
	cmd     *exec.Cmd
	handler pluginwire.Client // nil when the start failed
	answer  atomic.Int64      // unix nanoseconds of the last answer from the process

	schemaMu sync.Mutex
	schema   *sdk.Schema // asked once per process
}

func (p *process) touch()                { p.answer.Store(time.Now().UnixNano()) }
func (p *process) lastAnswer() time.Time { return time.Unix(0, p.answer.Load()) }
func (p *process) exited() bool          { return p.client.Exited() }
func (p *process) pid() int              { return p.cmd.Process.Pid }

// exitStatus describes how the process ended, once go-plugin reaped it.
func (p *process) exitStatus() string {
	if !p.exited() || p.cmd.ProcessState == nil {
		return ""
	}
	return p.cmd.ProcessState.String()
}

// start starts a process of the named plugin and completes go-plugin's handshake.
func (h *Host) start(name string, argv []string) (*process, error) {
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
	p := &process{client: client, cmd: cmd}
	rpc, err := client.Client()
	if err == nil {
		var raw any
		raw, err = rpc.Dispense(pluginwire.PluginName)
		if err == nil {
			var ok bool
			if p.handler, ok = raw.(pluginwire.Client); !ok {
				err = fmt.Errorf("dispensed %T", raw)
			}
		}
	}
	if err != nil {
		h.stop(p)
		return nil, fmt.Errorf("%w: %s: start: %w", ErrPluginFailed, name, pluginwire.CheckVersion(err))
	}
	p.touch() // the handshake was an answer
	log.Debug("plugin started", "pid", cmd.Process.Pid)
	return p, nil
}

// env is the plugins' whole environment; see the package doc.
func (h *Host) env() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	return append([]string{"PATH=" + path}, h.cfg.Env...)
}

// stop ends p's process group: SIGTERM, then SIGKILL after KillTimeout,
// then lets go-plugin reap the process and its goroutines.
func (h *Host) stop(p *process) {
	if p.cmd.Process != nil {
		pgid := p.cmd.Process.Pid
		if !p.exited() {
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			// A stopped plugin (SIGSTOP, a debugger) handles SIGTERM only
			// once it runs again; it must, to stop its jobs' processes.
			_ = syscall.Kill(-pgid, syscall.SIGCONT)
			if !h.waitExit(p, h.cfg.KillTimeout) {
				h.log.Warn("plugin did not stop in time; killing it", "pid", pgid)
			}
		}
		// Leftovers of the group, and the leader if it ignored SIGTERM.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		h.waitExit(p, h.cfg.KillTimeout)
	}
	p.client.Kill() // reaps the process, closes the connection
	if p.handler != nil {
		p.handler.Close()
	}
}

// waitExit reports whether p's process exited within d. go-plugin exposes
// the exit only as a flag, hence the polling.
func (h *Host) waitExit(p *process, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !p.exited() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
