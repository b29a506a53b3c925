package pluginhost

import (
	"encoding/json"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// toProto is a run as the wire carries it.
func toProto(r *sdk.Run) *pb.RunRequest {
	req := &pb.RunRequest{
		Job:          r.Job,
		Attempt:      int32(r.Attempt),
		FencingToken: r.FencingToken,
		OccurrenceId: r.OccurrenceID,
		Node:         r.Node,
		Settings:     r.Settings,
		StopWithinMs: r.StopWithin.Milliseconds(),
		Upstream:     r.Upstream,
		ShardIndex:   int32(r.ShardIndex),
		ShardCount:   int32(r.ShardCount),
	}
	if !r.ScheduledAt.IsZero() {
		req.ScheduledAt = timestamppb.New(r.ScheduledAt)
	}
	if a := r.Alert; a != nil {
		req.Alert = &pb.Alert{Kind: a.Kind, Job: a.Job, OccurrenceId: a.Occurrence, Status: a.Status, Error: a.Error}
		if !a.ScheduledAt.IsZero() {
			req.Alert.ScheduledAt = timestamppb.New(a.ScheduledAt)
		}
	}
	return req
}

// fromProto is a run's result as the engine records it.
func fromProto(r *pb.RunResult) *sdk.Result {
	return &sdk.Result{Message: r.GetMessage(), Metadata: r.GetMetadata(), Output: r.GetOutput()}
}

// schemaFromProto is a plugin's schema with each default kept as the JSON the plugin sent
// (a json.RawMessage): the job files' decoder takes JSON, so the default is not converted
// on the way. A type that is not an sdk.Type is kept as is, for Validate to report.
func schemaFromProto(r *pb.SchemaResponse) sdk.Schema {
	var s sdk.Schema
	for _, pa := range r.GetAttributes() {
		a := sdk.Attribute{Name: pa.GetName(), Type: sdk.Type(pa.GetType()), Required: pa.GetRequired(), Description: pa.GetDescription()}
		if t, err := sdk.ParseType(pa.GetType()); err == nil {
			a.Type = t
		}
		if d := pa.GetDefaultJson(); len(d) > 0 {
			a.Default = json.RawMessage(d)
		}
		s.Attributes = append(s.Attributes, a)
	}
	return s
}
