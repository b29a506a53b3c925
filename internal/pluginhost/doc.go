// Package pluginhost runs the handler plugins of a runner node: it starts
// plugin processes, hands them occurrences over go-plugin's gRPC protocol
// (internal/pluginwire), restarts them when they crash and kills them when
// the runner stops.
//
// Files by concern: host.go is the API (Run, RunAt, Schema, Check, Start,
// Close); supervisor.go looks after one plugin (its current process, restart
// backoff, run slots) and retire, the one way a process is taken out of
// service; process.go starts and stops processes; convert.go turns the SDK's
// types into the wire's and back.
//
// One process per plugin, started lazily by the first Run and shared by all
// concurrent runs of that plugin, which travel over its one Session stream
// (internal/pluginwire). A run in flight when its plugin crashes fails with
// ErrPluginFailed (the engine retries per the job's policy); the runner
// itself is unaffected. The next Run starts a new process, after a jittered
// backoff that doubles with every consecutive failure, so that a crash loop
// does not spin.
//
// Retiring a process (it exited, failed its health check, broke its
// connection, refused a run while shutting down, or the host closes)
// detaches it from its plugin under the plugin's lock and stops it in the
// background, never under the lock: callers queued behind the lock go on to
// a fresh process instead of waiting for the old one's KillTimeout. Close
// waits for every stop.
//
// Schema: Host.Schema asks a plugin process for its handler block's schema
// once and caches it with the process (a replaced process is asked again).
//
// Health: a call on a process that has not answered anything for
// Config.HealthInterval first asks the gRPC health service, bounded by
// Config.HealthTimeout (go-plugin's own Ping has no deadline). A process
// that does not answer (SIGSTOPped, deadlocked) fails that call with
// ErrPluginFailed and is stopped in the background (Close waits for it),
// so the callers behind it are not held up; the next call starts a new
// process. A process that answered recently is trusted, so the check costs
// a round trip only on a quiet plugin. Stopping sends SIGCONT after
// SIGTERM, so a stopped plugin still gets to stop its jobs.
//
// Start times: RunAt sends a run to its plugin at once, with the instant
// before which the handler must not be called (RunRequest.start_at, which
// every plugin of protocol version 3 honours), so that a burst due at one
// instant starts together instead of queueing behind its own dispatch.
//
// Cancellation past a grace: Run returns as soon as its ctx is done; a
// handler that ignores the cancellation is the plugin's to catch, because
// only the plugin can tell whether the handler returned. plugin/sdk does
// (WithCancelGrace): it exits the process, which the next Run restarts.
//
// Concurrency: Config.MaxConcurrent caps the runs in flight per plugin; a
// run beyond it waits for a slot or its ctx.
//
// Permanent errors: a handler error marked permanent travels in the result
// (RunResult.permanent) and Run returns it marked again, so that
// sdk.IsPermanent(err) holds for the caller.
//
// Version: a plugin that announces another protocol version is refused at
// start with a pluginwire.VersionError naming both versions.
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
// Cancellation of a run is its ctx: cancelling it sends the run's cancel
// message on the session, which cancels the handler's ctx inside the plugin.
// Run returns at once; the plugin finishes killing the job's processes
// asynchronously (bounded by the exec handler's kill grace), and Close waits
// for that.
//
// Starting a plugin is not interruptible by ctx (go-plugin's handshake); it
// is bounded by Config.StartTimeout.
package pluginhost
