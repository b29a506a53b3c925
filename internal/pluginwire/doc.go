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
// HostPluginSet and PluginSet build a fresh one for each client or server,
// so nothing is shared or mutable between hosts, tests or plugins.
//
// The host's side of a plugin is a Client: the Handler service (Schema,
// Run, Check) plus Ping, a health check through the standard gRPC health
// service that, unlike go-plugin's Ping, honours a deadline, and Close,
// which ends its session.
//
// Versions: ProtocolVersion is the handshake's app protocol version and the
// number in the proto package's name. go-plugin refuses a mismatch with an
// obscure message; CheckVersion turns it into a VersionError naming both
// versions.
//
// One transport: every run of a plugin process travels over one Session
// stream (session.go), multiplexed by an id the host picks. A stream per
// run would cost its set-up, flow control and goroutines on every run, the
// bulk of the boundary's cost at thousands of runs a second. Cancellation is
// a cancel message, the run's deadline travels in its request, and the
// plugin's side hands the handler a context that ends on either, or when the
// stream ends. Protocol version 2 also had a Run stream per run and direct
// connections beside gRPC; version 3 dropped both, so that there is one path
// to make right and fast (docs/benchmarks.md has the comparison).
package pluginwire
