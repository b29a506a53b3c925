// Package sdk is the only package a cronfleet handler plugin imports.
//
// A plugin is a program whose main calls Serve with a Handler:
//
//	func main() { sdk.Serve(myHandler{}) }
//
// The runner starts the program, speaks go-plugin's gRPC protocol with it
// (the handshake, the proto and the adapters are internal, so authors never
// see them) and calls Handler.Run once per occurrence, concurrently for
// concurrent occurrences. A Run carries the occurrence (job, scheduled time,
// attempt, fencing token, occurrence id, node) and the job's handler block
// as JSON, which Run.Decode unmarshals strictly. Output written to
// Run.Output reaches the runner line by line while the handler runs.
//
// Schema: a Handler declares its block's attributes (name, Type, required,
// default, description) with its Schema method; Func pairs a Schema with a
// plain function. The runner decodes every handler block against it with
// HCL before anything runs, so mistakes in a job file are reported at their
// line; defaults are filled in before Run sees the settings. A HandlerFunc
// has the empty Schema: its block takes no attributes. (Schema joined
// Handler with protocol version 2: a Handler written before needs a Schema
// method, or HandlerFunc/Func around its Run.) Package sdktest runs a handler in-process
// and checks its settings against its Schema.
//
// Errors: an error from Run fails the attempt and the runner retries per
// the job's policy; wrap it with Permanent when retrying cannot help (bad
// settings, a refused request). Run.Decode's errors are permanent.
//
// Protocol: the handshake carries protocol version 3 (plugin/proto); a
// runner refuses a plugin built against another version, naming both.
//
// Cancellation: the ctx passed to Handler.Run is cancelled when the runner
// cancels the occurrence (its timeout, a lost lease, the runner's shutdown)
// and when the plugin itself shuts down. A handler must return promptly
// after ctx is done (within Run.StopWithin) and must not leave processes
// behind.
//
// Self-fencing: the runner sends each run's fence, the instant its lease
// stops being trusted unless renewed, and a new one after every renewal.
// Serve cancels the handler's ctx at the fence by itself, with cause
// ErrFenced, so that a handler stops even when its runner cannot tell it to:
// the runner is frozen (SIGSTOP, a stalled VM) or cut off. The handler then
// has Run.StopWithin before the lease expires and another node may take the
// occurrence over.
//
// A handler that ignores its cancellation for longer than the cancel grace
// (WithCancelGrace, default 10s) is treated as stuck: Serve cancels every
// handler, waits the shutdown grace and exits with status 1, and the
// runner starts a fresh process for the next run. Its work cannot be
// stopped otherwise, and the runner already told its caller it stopped.
//
// Lifetime: a plugin must never outlive its runner. Serve therefore treats
// SIGTERM (which the runner's Pdeathsig also delivers when the runner dies)
// and a change of the parent process id (the backup: Pdeathsig is tied to
// the OS thread that started the plugin) as the end: it cancels every
// running handler, waits a short grace period for them to return, and
// exits. The same happens when the runner closes the connection. A dead
// runner also leaves the plugin's stderr a pipe without a reader; Serve
// handles SIGPIPE so that logging there fails instead of killing the plugin
// before its handlers have stopped (commands a handler starts still get the
// default SIGPIPE action).
//
// Logging: Run.Logger writes structured JSON lines in go-plugin's hclog
// convention to the plugin's stderr; the runner turns each line into one of
// its own log records, attributed to the plugin. Anything else written to
// stdout or stderr is forwarded as plain text.
//
// Serve is the only place in a plugin that builds a root context: it is the
// plugin process' main loop.
package sdk
