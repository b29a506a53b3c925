// Package pluginhost runs the handler plugins of a runner node: it starts
// plugin processes, hands them occurrences over go-plugin's gRPC protocol
// (internal/pluginwire), restarts them when they crash and kills them when
// the runner stops.
//
// One process per plugin, started lazily by the first Run and shared by all
// concurrent runs of that plugin (a gRPC client is safe for concurrent use).
// A run in flight when its plugin crashes fails with ErrPluginFailed (the
// engine retries per the job's policy); the runner itself is unaffected. The
// next Run starts a new process, after a backoff that doubles with every
// consecutive failure so that a crash loop does not spin.
//
// Environment: plugins do not inherit the runner's environment, which holds
// secrets such as Redis credentials. A plugin sees PATH (the runner's, or a
// default), whatever Config.Env lists, and go-plugin's handshake variables;
// nothing else (no HOME, TZ or LANG: occurrence times travel as UTC, and a
// plugin that needs more is given it explicitly through Config.Env).
//
// Process lifetime (invariant 7, "no plugin process behind"): each plugin
// runs in its own process group (Setpgid), so that Close and restarts signal
// the plugin together with any helper it started in that group and so that
// a terminal's Ctrl-C reaches only the runner, which then shuts down in
// order. Stopping is SIGTERM to the group, then SIGKILL to the group after
// Config.KillTimeout. SIGTERM comes first because a plugin's work may live
// in process groups of its own (the exec handler puts every command in a
// fresh group so it can kill a job's whole tree); only the plugin can reach
// those, and plugin/sdk answers SIGTERM by cancelling every handler and
// waiting for them before it exits.
//
// If the runner dies without Close (SIGKILL, OOM), the kernel sends each
// plugin SIGTERM (Pdeathsig), with the same clean-up as above. SIGTERM
// rather than SIGKILL for the same reason: a SIGKILLed plugin could not stop
// its jobs' process groups. Pdeathsig fires when the OS thread that started
// the plugin exits, not the process; Go keeps its threads alive, but as a
// backup plugin/sdk also exits when its parent process id changes. A plugin
// not built on plugin/sdk must handle SIGTERM itself.
//
// A runner running as PID 1 (a container without an init) inherits orphaned
// grandchildren and must reap them; run it under an init such as tini.
//
// Cancellation of a run is its ctx: cancelling it cancels the gRPC stream,
// which cancels the handler's ctx inside the plugin. Run returns as soon as
// the stream ends; the plugin finishes killing the job's processes
// asynchronously (bounded by the exec handler's kill grace), and Close waits
// for that.
//
// Starting a plugin is not interruptible by ctx (go-plugin's handshake); it
// is bounded by Config.StartTimeout.
package pluginhost
