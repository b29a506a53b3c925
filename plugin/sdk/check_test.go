package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// checked is a handler with checks of its own: "to" must be given unless "all" is true,
// and "port" must be a port number.
type checked struct{}

func (checked) Schema() Schema {
	return Schema{Attributes: []Attribute{
		{Name: "to", Type: TypeString},
		{Name: "all", Type: TypeBool, Default: false},
		{Name: "port", Type: TypeNumber, Default: 25},
	}}
}

func (checked) Check(run *Run) error {
	var s struct {
		To   string
		All  bool
		Port int
	}
	if err := run.Decode(&s); err != nil {
		return err
	}
	if s.Port == 666 {
		panic("a bug in Check")
	}
	var errs []error
	if s.To == "" && !s.All {
		errs = append(errs, errors.New(`either "to" or all = true is required`))
	}
	if s.Port < 1 || s.Port > 65535 {
		errs = append(errs, fmt.Errorf("wrapped: %w", InvalidSetting("port", "%d is not a port number", s.Port)))
	}
	return errors.Join(errs...)
}

func (checked) Run(context.Context, *Run) (*Result, error) { return nil, nil }

func TestCheck(t *testing.T) {
	h := connect(t, &server{log: slog.New(slog.DiscardHandler), base: t.Context(), h: checked{}})
	for _, tc := range []struct {
		settings string
		want     []*pb.Problem
	}{
		{`{"to":"ops"}`, nil},
		// Defaults are applied before Check sees the settings: all = false, port = 25.
		{`{}`, []*pb.Problem{{Message: `either "to" or all = true is required`}}},
		{`{"all":true,"port":0}`, []*pb.Problem{{Attribute: "port", Message: "0 is not a port number"}}},
		{`{"port":70000}`, []*pb.Problem{
			{Message: `either "to" or all = true is required`},
			{Attribute: "port", Message: "70000 is not a port number"},
		}},
		{`{"to":"x","port":666}`, []*pb.Problem{{Message: "the plugin's Check panicked: a bug in Check"}}},
	} {
		res, err := h.Check(t.Context(), &pb.CheckRequest{Settings: []byte(tc.settings)})
		if err != nil {
			t.Fatalf("Check(%s): %v", tc.settings, err)
		}
		if diff := cmp.Diff(tc.want, res.GetProblems(), protocmp.Transform()); diff != "" {
			t.Errorf("Check(%s) (-want +got):\n%s", tc.settings, diff)
		}
	}

	// In process, as sdktest uses it; a handler without Check has no findings.
	if got := Check(checked{}, []byte(`{"all":true,"port":-1}`)); len(got) != 1 || got[0].Attribute != "port" {
		t.Errorf("Check in process = %+v", got)
	}
	if got := Check(HandlerFunc(func(context.Context, *Run) (*Result, error) { return nil, nil }), []byte(`{}`)); got != nil {
		t.Errorf("Check of a handler without Checker = %+v, want none", got)
	}
}
