// Command earlyplugin is a plugin written without plugin/sdk that ignores
// RunRequest.start_at_monotonic_ns: it answers every run at once, as a
// careless plugin in another language might. "runner plugin check" must fail it.
package main

import (
	"context"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/cronfleet/cronfleet/internal/pluginwire"
	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

type early struct{}

func (early) Schema(context.Context) (*pb.SchemaResponse, error) { return &pb.SchemaResponse{}, nil }

func (early) Check(context.Context, *pb.CheckRequest) (*pb.CheckResponse, error) {
	return &pb.CheckResponse{}, nil
}

func (early) Run(context.Context, *pb.RunRequest, time.Time, func(string)) (*pb.RunResult, error) {
	return &pb.RunResult{Message: "ran at once"}, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: pluginwire.Handshake(),
		Plugins:         pluginwire.PluginSet(early{}),
		GRPCServer:      pluginwire.NewServer,
	})
}
