package pluginwire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// ProtocolVersion is the version of the wire protocol (plugin/proto,
// package cronfleet.plugin.v1). A host refuses a plugin built for another
// version at the handshake, before any job runs on it.
const ProtocolVersion = 1

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

// PluginSet returns a new plugin set serving impl (plugin side) or, with a
// nil impl, dispensing clients (host side).
func PluginSet(impl Handler) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl}}
}

// Handler is the Go shape of the Handler gRPC service. The plugin side
// implements it (plugin/sdk wraps a user handler); the host side gets one
// from Dispense.
//
// Run streams output lines through output while the run lasts and returns
// the final result. A returned error means the transport or the plugin
// failed; a failing handler is reported inside the result (has_error).
// output is never called after Run returned.
type Handler interface {
	Run(ctx context.Context, req *pb.RunRequest, output func(line string)) (*pb.RunResult, error)
}

// GRPCPlugin is the go-plugin Plugin for Handler. Only gRPC is supported.
type GRPCPlugin struct {
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

// GRPCClient returns a Handler that calls the plugin over c.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &client{c: pb.NewHandlerClient(c)}, nil
}

// client adapts the generated client to Handler.
type client struct {
	c pb.HandlerClient
}

func (c *client) Run(ctx context.Context, req *pb.RunRequest, output func(line string)) (*pb.RunResult, error) {
	stream, err := c.c.Run(ctx, req)
	if err != nil {
		return nil, err
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("pluginwire: stream ended without a result")
		}
		if err != nil {
			return nil, err
		}
		switch e := ev.Event.(type) {
		case *pb.RunEvent_Output:
			if output != nil {
				output(e.Output)
			}
		case *pb.RunEvent_Result:
			return e.Result, nil
		default:
			return nil, fmt.Errorf("pluginwire: unknown event %T", e)
		}
	}
}

// server adapts a Handler to the generated server interface.
type server struct {
	pb.UnimplementedHandlerServer
	impl Handler
}

func (s *server) Run(req *pb.RunRequest, stream grpc.ServerStreamingServer[pb.RunEvent]) error {
	// grpc streams do not allow concurrent Send, nor Send after the method
	// returned; a handler may write output from several goroutines or leak
	// one, so sends are serialised and stop when Run returns.
	var (
		mu   sync.Mutex
		done bool
	)
	output := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			_ = stream.Send(&pb.RunEvent{Event: &pb.RunEvent_Output{Output: line}})
		}
	}
	res, err := s.impl.Run(stream.Context(), req, output)
	mu.Lock()
	done = true
	mu.Unlock()
	if err != nil {
		return err
	}
	if res == nil {
		res = &pb.RunResult{}
	}
	return stream.Send(&pb.RunEvent{Event: &pb.RunEvent_Result{Result: res}})
}
