package pluginwire

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// Path names the one way a test's plugin accepts runs.
type Path string

// The paths a run can take, most preferred first.
const (
	ViaDirect  Path = "direct"
	ViaSession Path = "session"
	ViaRun     Path = "run"
)

// Paths are all of them.
var Paths = []Path{ViaDirect, ViaSession, ViaRun}

// OnlyVia returns a plugin set serving impl that answers UNIMPLEMENTED on the other two
// paths, as an older or foreign plugin would: a run that took another path fails.
func OnlyVia(path Path, impl Handler) (plugin.PluginSet, *GRPCPlugin) {
	p := &onlyPlugin{GRPCPlugin: GRPCPlugin{Impl: impl}, path: path}
	return plugin.PluginSet{PluginName: p}, &p.GRPCPlugin
}

type onlyPlugin struct {
	GRPCPlugin
	path Path
}

func (p *onlyPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterHandlerServer(s, &onlyServer{server: server{impl: p.Impl, direct: &p.direct}, path: p.path})
	return nil
}

type onlyServer struct {
	server
	path Path
}

func unimplemented(method string) error {
	return status.Errorf(codes.Unimplemented, "method %s not implemented", method)
}

func (s *onlyServer) Direct(ctx context.Context, req *pb.DirectRequest) (*pb.DirectResponse, error) {
	if s.path != ViaDirect {
		return nil, unimplemented("Direct")
	}
	return s.server.Direct(ctx, req)
}

func (s *onlyServer) Session(stream pb.Handler_SessionServer) error {
	if s.path != ViaSession {
		return unimplemented("Session")
	}
	return s.server.Session(stream)
}

func (s *onlyServer) Run(req *pb.RunRequest, stream grpc.ServerStreamingServer[pb.RunEvent]) error {
	if s.path != ViaRun {
		return unimplemented("Run")
	}
	return s.server.Run(req, stream)
}

// DirectConns counts the direct connections p's plugin accepted.
func DirectConns(p *GRPCPlugin) uint64 {
	p.direct.mu.Lock()
	defer p.direct.mu.Unlock()
	return p.direct.next
}
