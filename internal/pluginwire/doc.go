// Package pluginwire is the one place where the host (internal/pluginhost)
// and the plugin side (plugin/sdk) agree on how a handler plugin is spoken
// to: the go-plugin handshake, the plugin name, and two logic-free adapters
// between the Handler interface below and the gRPC service generated from
// plugin/proto/handler.proto (package pb).
//
// Why a package of its own: both sides must use the very same handshake and
// plugin set, or the processes refuse each other; keeping them here means a
// version bump is one edit. The adapters speak in protobuf messages, not in
// the SDK's types, because plugin/sdk imports this package (the SDK converts
// between its Run/Result and pb, the host does the same for its callers).
//
// Unlike go-plugin's examples there is no package-level plugin map:
// HostPluginSet and GRPCPlugin.Set build a fresh one for each client or
// server, so nothing is shared or mutable between hosts, tests or plugins.
// The plugin side keeps its GRPCPlugin, because it owns the direct
// connections' listener and goroutines, which its Close stops.
//
// The host's side of a plugin is a Client: the Handler service (Schema,
// Run, Check) plus Ping, a health check through the standard gRPC health
// service that, unlike go-plugin's Ping, honours a deadline, and Close,
// which ends its run session.
//
// Versions: ProtocolVersion is the handshake's app protocol version and the
// number in the proto package's name. go-plugin refuses a mismatch with an
// obscure message; CheckVersion turns it into a VersionError naming both
// versions.
//
// Runs travel over one Session stream per plugin process (session.go),
// which multiplexes them by id: a stream per run costs its set-up, flow
// control and goroutines, most of the boundary's cost at thousands of runs
// a second. A plugin without Session (UNIMPLEMENTED, e.g. one written
// before it or in another language) gets each run on its own Run stream;
// a run sent on a session the plugin refused never reached it, so it is
// simply sent again that way.
//
// Cancellation: on a Run stream it is the stream's context; on the session
// it is a cancel message, and the run's deadline travels in its request.
// Either way the server adapter hands the handler a context that ends then.
//
// Before either, a run tries the plugin's direct connections (direct*.go):
// TLS over a unix socket, one run at a time per connection, no gRPC. They
// exist because a run's latency across the boundary is not bytes but
// hand-overs between goroutines, of which a gRPC stream has three or four
// per direction; see direct.go. Up to MaxDirectConns per plugin process, the
// rest of a burst goes over the session. Cancellation there is the
// CancelDirect call, which may overtake its run (the plugin then never starts
// it); when it fails, the run's error wraps ErrCancelLost and the host stops
// the process, as it does a plugin that ignores cancellation.
package pluginwire
