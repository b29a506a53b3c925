package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// marshal is proto.Marshal for seeds.
func marshal(f *testing.F, m proto.Message) []byte {
	f.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzRunResult feeds a plugin's run results, as they arrive from the wire, to runResult.
// What the handler reported reaches the engine as it was sent; a result with an error is
// an error naming the plugin and carrying the handler's message, permanent when the
// plugin says so, and the context's error when the run's context had ended. A handler's
// result and error, encoded as plugin/sdk encodes them, come back the same.
func FuzzRunResult(f *testing.F) {
	f.Add(marshal(f, &pb.RunResult{Message: "exit 1", Metadata: map[string]string{"exit_code": "1"}, Output: "tail\n",
		Error: "exit status 1", HasError: true, Permanent: true}), false, "m", "k", "v", "out", "err", true, false)
	f.Add(marshal(f, &pb.RunResult{HasError: true}), true, "", "", "", "", "", false, true)
	f.Add([]byte{0x2a, 0x00, 0x28, 0x02}, false, "é", "", "", "", "%w", true, true)
	f.Fuzz(func(t *testing.T, data []byte, ended bool, message, key, value, output, errText string, failed, permanent bool) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		if ended {
			cancel()
		}
		var res pb.RunResult
		if err := proto.Unmarshal(data, &res); err == nil {
			out, err := runResult(ctx, "p", &res)
			checkResult(t, &res, ended, out, err)
		}

		// The round trip: what a handler returned, as the SDK's server sends it.
		handled := &sdk.Result{Message: message, Metadata: map[string]string{key: value}, Output: output}
		var herr error
		if failed {
			herr = errors.New(errText)
			if permanent {
				herr = sdk.Permanent(herr)
			}
		}
		sent := &pb.RunResult{Message: handled.Message, Metadata: handled.Metadata, Output: handled.Output}
		if herr != nil {
			sent.HasError, sent.Error, sent.Permanent = true, herr.Error(), sdk.IsPermanent(herr)
		}
		b, err := proto.Marshal(sent)
		if err != nil {
			return // not UTF-8: pluginwire replaces it before sending (see its FuzzSessionEvents)
		}
		res.Reset()
		if err := proto.Unmarshal(b, &res); err != nil {
			t.Fatalf("%v does not decode: %v", sent, err)
		}
		out, err := runResult(ctx, "p", &res)
		if diff := cmp.Diff(handled, out); diff != "" {
			t.Fatalf("result (-handled +got):\n%s", diff)
		}
		if (err != nil) != failed || failed && !strings.HasSuffix(err.Error(), ": "+errText) ||
			failed && !ended && sdk.IsPermanent(err) != permanent {
			t.Fatalf("the handler's error %v arrived as %v", herr, err)
		}
	})
}

// checkResult checks what runResult made of res.
func checkResult(t *testing.T, res *pb.RunResult, ended bool, out *sdk.Result, err error) {
	t.Helper()
	if diff := cmp.Diff(&sdk.Result{Message: res.GetMessage(), Metadata: res.GetMetadata(), Output: res.GetOutput()}, out,
		cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("result (-sent +got):\n%s", diff)
	}
	switch {
	case !res.GetHasError():
		if err != nil {
			t.Fatalf("result %v without an error: %v", res, err)
		}
	case err == nil || !strings.HasPrefix(err.Error(), "pluginhost: p: ") || !strings.HasSuffix(err.Error(), res.GetError()):
		t.Fatalf("result %v: error %v", res, err)
	case ended && (!errors.Is(err, context.Canceled) || sdk.IsPermanent(err)):
		t.Fatalf("result %v of a cancelled run: error %v, want the cancellation", res, err)
	case !ended && sdk.IsPermanent(err) != res.GetPermanent():
		t.Fatalf("result %v: error %v, permanent %v", res, err, sdk.IsPermanent(err))
	}
}

// fuzzSchema is a plugin's schema with every type, some required and some with defaults.
var fuzzSchema = &pb.SchemaResponse{Attributes: []*pb.Attribute{
	{Name: "url", Type: "string", Required: true, Description: "Where."},
	{Name: "method", Type: "string", DefaultJson: []byte(`"GET"`)},
	{Name: "expect", Type: "list(number)", DefaultJson: []byte(`[200]`)},
	{Name: "headers", Type: "map( string )"},
	{Name: "verbose", Type: "bool", DefaultJson: []byte(`false`)},
	{Name: "tags", Type: "list(string)"},
	{Name: "retries", Type: "number", Required: true},
	{Name: "extra", Type: "any", DefaultJson: []byte(`{"a":[1,"x",null]}`)},
}}

// FuzzSchema feeds a plugin's schema, as it arrives from the wire, to schemaFromProto and
// then, as the runner does, to the job file's decoding of a handler block. The schema
// keeps what the plugin sent; a valid one decodes handler blocks into settings that pass
// its own CheckSettings, which is what plugin authors test their handlers with, with the
// defaults of what the block leaves out. testdata/fuzz/FuzzSchema holds a block whose
// lists and maps held null, which the job file's decoding took and CheckSettings refused.
func FuzzSchema(f *testing.F) {
	schema := marshal(f, fuzzSchema)
	for _, block := range []string{
		`url = "http://x"
    retries = 3`,
		`url = "u"
    retries = 1.5e3
    method = null
    headers = { A = "b", "c d" = upper("e") }
    tags = ["x", 1, true]
    extra = { a = [1, 2], b = null }`,
		`url = 1
    retries = "2"
    verbose = "true"`,
		`url = "u"
    retries = 1e400`,
		`url = "u"
    retries = -0
    extra = null
    expect = []`,
	} {
		f.Add(schema, block)
	}
	f.Add(marshal(f, &pb.SchemaResponse{Attributes: []*pb.Attribute{{Name: "a", Type: "any", DefaultJson: []byte(`null`)}}}), ``)
	f.Add(marshal(f, &pb.SchemaResponse{Attributes: []*pb.Attribute{{Name: "1a", Type: "list"}, {Name: "a", Type: "map(number)", DefaultJson: []byte(`{`)}}}), `a = 1`)
	f.Fuzz(func(t *testing.T, data []byte, block string) {
		var r pb.SchemaResponse
		if proto.Unmarshal(data, &r) != nil {
			return
		}
		s := schemaFromProto(&r)
		if len(s.Attributes) != len(r.GetAttributes()) {
			t.Fatalf("schema %v read as %+v", &r, s)
		}
		for i, pa := range r.GetAttributes() {
			a := s.Attributes[i]
			typ, err := sdk.ParseType(pa.GetType())
			if err != nil {
				typ = sdk.Type(pa.GetType())
			}
			def, _ := a.Default.(json.RawMessage)
			if a.Name != pa.GetName() || a.Type != typ || a.Required != pa.GetRequired() || a.Description != pa.GetDescription() ||
				string(def) != string(pa.GetDefaultJson()) || (a.Default == nil) != (len(pa.GetDefaultJson()) == 0) {
				t.Fatalf("attribute %v read as %+v", pa, a)
			}
		}
		if s.Validate() != nil {
			return
		}
		settings, ok := decodeBlock(t, s, block)
		if !ok {
			return
		}
		if err := s.CheckSettings(settings); err != nil {
			t.Fatalf("block %q decoded to settings %s, which its schema refuses: %v", block, settings, err)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(settings, &obj); err != nil {
			t.Fatal(err)
		}
		for _, a := range s.Attributes {
			def, _ := a.Default.(json.RawMessage)
			if v := obj[a.Name]; def != nil && string(v) == "null" && strings.TrimSpace(string(def)) != "null" {
				t.Fatalf("block %q decoded to settings %s, without the default %s of %q", block, settings, def, a.Name)
			}
		}
	})
}

// decodeBlock decodes a job's handler block of body against s as the runner does (see
// schemas in cmd/runner), and returns its settings if the job file has no errors.
func decodeBlock(t *testing.T, s sdk.Schema, body string) (json.RawMessage, bool) {
	t.Helper()
	src := "job \"j\" {\n  schedule = \"@daily\"\n  handler \"p\" {\n    " + body + "\n  }\n}\n"
	cfg, _, diags := config.Parse("jobs.hcl", []byte(src))
	if diags.HasErrors() || len(cfg.Jobs) != 1 {
		return nil, false
	}
	diags = cfg.DecodeHandlers(func(string) ([]config.HandlerAttribute, error) {
		attrs := make([]config.HandlerAttribute, len(s.Attributes))
		for i, a := range s.Attributes {
			def, _ := a.Default.(json.RawMessage)
			attrs[i] = config.HandlerAttribute{Name: a.Name, Type: a.Type.String(), Required: a.Required, Default: def}
		}
		return attrs, nil
	})
	if diags.HasErrors() {
		return nil, false
	}
	return cfg.Jobs[0].Handler.Settings, true
}
