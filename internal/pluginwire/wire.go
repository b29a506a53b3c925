package pluginwire

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// ProtocolVersion is the version of the wire protocol (plugin/proto,
// package cronfleet.plugin.v3). A host refuses a plugin built for another
// version at the handshake, before any job runs on it; see VersionError.
const ProtocolVersion = 3

// VersionError is a handshake refused because the plugin speaks another
// protocol version than the host.
type VersionError struct {
	// Plugin is the protocol version the plugin announced: for a Go
	// plugin, that of the plugin/sdk it was built with.
	Plugin int
	// Host is this runner's ProtocolVersion: the version the plugin must be
	// rebuilt for.
	Host int
}

// Error names both versions and the fix, because it is what an operator
// sees when a plugin does not start, and go-plugin's own text says neither.
func (e *VersionError) Error() string {
	return fmt.Sprintf("plugin speaks cronfleet plugin protocol version %d, this runner speaks version %d: "+
		"rebuild the plugin against a plugin/sdk of protocol version %d", e.Plugin, e.Host, e.Host)
}

// go-plugin reports a mismatch as "incompatible API version with plugin.
// Plugin version: 2, Client versions: [3]" in a plain error.
var goPluginVersionErr = regexp.MustCompile(`(?i)incompatible API version with plugin\. Plugin version: (-?\d+)`)

// CheckVersion turns go-plugin's start error for a version mismatch into a
// *VersionError (wrapping nothing: go-plugin's text adds nothing); other
// errors are returned unchanged.
func CheckVersion(err error) error {
	if err == nil {
		return nil
	}
	m := goPluginVersionErr.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	v, convErr := strconv.Atoi(m[1])
	if convErr != nil {
		return err
	}
	return &VersionError{Plugin: v, Host: ProtocolVersion}
}

// WindowSize is the HTTP/2 flow-control window, per stream and per connection, that
// both ends of a plugin connection use. All runs of a plugin share one Session stream,
// and a burst sends hundreds of requests, then results, at once: with gRPC's default
// window the sender stalls for window updates in the middle of the burst.
const WindowSize = 4 << 20

// DialOptions are the host's gRPC options for a plugin connection (see WindowSize).
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(WindowSize), grpc.WithInitialConnWindowSize(WindowSize)}
}

// NewServer is the plugin's gRPC server: go-plugin's options plus WindowSize.
func NewServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts, grpc.InitialWindowSize(WindowSize), grpc.InitialConnWindowSize(WindowSize))...)
}

// PluginName is the key of the one plugin every handler process serves.
const PluginName = "handler"

// Handshake returns the go-plugin handshake shared by host and plugins. The
// magic cookie is not a secret: it only makes a plugin binary that is run by
// hand say so instead of hanging on its stdin.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   "CRONFLEET_PLUGIN_MAGIC_COOKIE",
		MagicCookieValue: "3f6c1b0e9a7d4c52b8e1f0a2d6c4e9b7",
	}
}

// HostPluginSet returns a new plugin set that dispenses clients, for the host.
func HostPluginSet() plugin.PluginSet {
	return plugin.PluginSet{PluginName: &GRPCPlugin{}}
}

// PluginSet returns a new plugin set serving impl, for the plugin side.
func PluginSet(impl Handler) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl}}
}

// Handler is the Go shape of the Handler gRPC service. The plugin side
// implements it (plugin/sdk wraps a user handler); the host side gets one
// from Dispense.
//
// Schema returns the handler block's schema. Run streams output lines
// through output while the run lasts and returns the final result; it is
// called concurrently, once per run. startAt, unless zero, is a time.Now
// reading (its monotonic clock counts) before which the handler must not be
// called: it travels as an instant of the machine's monotonic clock
// (RunRequest.start_at_monotonic_ns), which each side converts from and to
// its own process' time. A returned error means the transport or the plugin
// failed; a failing handler is reported inside the result (has_error).
// output is never called after Run returned. Check returns the
// problems found in one handler block's settings; a plugin without checks of
// its own answers with none (over the wire, a plugin that does not implement
// it answers UNIMPLEMENTED, which the host's Check turns into none).
type Handler interface {
	Schema(ctx context.Context) (*pb.SchemaResponse, error)
	Run(ctx context.Context, req *pb.RunRequest, startAt time.Time, output func(line string)) (*pb.RunResult, error)
	Check(ctx context.Context, req *pb.CheckRequest) (*pb.CheckResponse, error)
}

// Client is the host's view of a plugin: its Handler plus a health check.
type Client interface {
	Handler
	// Ping asks the plugin's gRPC health service (which go-plugin serves
	// in every Go plugin, and which plugins in other languages must serve)
	// whether it is serving. Unlike go-plugin's own Ping it is bounded by
	// ctx, so a stopped or deadlocked plugin is noticed.
	Ping(ctx context.Context) error
	// Close ends the client's session, if it has one, and waits for its
	// reader goroutine; runs still in flight on it fail. The gRPC
	// connection is go-plugin's to close.
	Close()
}

// GRPCPlugin is the go-plugin Plugin for Handler. Only gRPC is supported.
type GRPCPlugin struct {
	// NetRPCUnsupportedPlugin answers go-plugin's net/rpc half with an
	// error, so a host that asks for net/rpc fails at once rather than
	// talking a protocol no cronfleet plugin serves.
	plugin.NetRPCUnsupportedPlugin
	// Impl is served by the plugin process; the host leaves it nil.
	Impl Handler
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers Impl with the plugin's gRPC server.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("pluginwire: no handler to serve")
	}
	pb.RegisterHandlerServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns a Client that calls the plugin over c.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &client{c: pb.NewHandlerClient(c), health: healthpb.NewHealthClient(c)}, nil
}

// client adapts the generated client to Client.
type client struct {
	c      pb.HandlerClient
	health healthpb.HealthClient

	mu   sync.Mutex
	sess *session // nil until the first run, or after Close
}

var _ Client = (*client)(nil)

// Ping implements Client.Ping: a plugin whose health service answers
// anything but SERVING is as unusable as one that does not answer.
func (c *client) Ping(ctx context.Context) error {
	res, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: plugin.GRPCServiceName})
	if err != nil {
		return err
	}
	if st := res.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("pluginwire: plugin health is %s", st)
	}
	return nil
}

// Schema implements Handler.Schema over gRPC.
func (c *client) Schema(ctx context.Context) (*pb.SchemaResponse, error) {
	return c.c.Schema(ctx, &pb.SchemaRequest{})
}

// Check implements Handler.Check over gRPC. Check is optional in the
// protocol: a plugin that does not implement it has no findings.
func (c *client) Check(ctx context.Context, req *pb.CheckRequest) (*pb.CheckResponse, error) {
	res, err := c.c.Check(ctx, req)
	if status.Code(err) == codes.Unimplemented {
		return &pb.CheckResponse{}, nil
	}
	return res, err
}

// Run implements Handler.Run over the plugin's Session stream.
func (c *client) Run(ctx context.Context, req *pb.RunRequest, startAt time.Time, output func(line string)) (*pb.RunResult, error) {
	for try := 0; ; try++ {
		if ctx.Err() != nil {
			// It ended before it was sent: send it nowhere.
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		s, err := c.session(ctx)
		if err != nil {
			return nil, fmt.Errorf("pluginwire: session: %w", err)
		}
		res, err := s.run(ctx, req, startAt, output)
		if errors.Is(err, errSessionEnded) && try == 0 {
			continue // nothing was sent: a fresh stream to the same process may carry it
		}
		return res, err
	}
}

// server adapts a Handler to the generated server interface.
type server struct {
	pb.UnimplementedHandlerServer
	impl Handler
}

// Schema serves Handler.Schema.
func (s *server) Schema(ctx context.Context, _ *pb.SchemaRequest) (*pb.SchemaResponse, error) {
	return s.impl.Schema(ctx)
}

// Check serves Handler.Check.
func (s *server) Check(ctx context.Context, req *pb.CheckRequest) (*pb.CheckResponse, error) {
	return s.impl.Check(ctx, req)
}

// Session serves runs over one stream (see session.go).
func (s *server) Session(stream pb.Handler_SessionServer) error {
	return serveSession(s.impl, stream)
}

// runImpl calls impl.Run with an output that hands each line to sendLine, one at a time
// and only until Run returns: a handler may write output from several goroutines, or
// leak one, and a stream allows neither concurrent sends nor a run's lines after its end.
// A nil result comes back as an empty one.
func runImpl(ctx context.Context, impl Handler, req *pb.RunRequest, startAt time.Time, sendLine func(string)) (*pb.RunResult, error) {
	var (
		mu   sync.Mutex
		done bool
	)
	res, err := impl.Run(ctx, req, startAt, func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			sendLine(line)
		}
	})
	mu.Lock()
	done = true
	mu.Unlock()
	if err == nil && res == nil {
		res = &pb.RunResult{}
	}
	return res, err
}
