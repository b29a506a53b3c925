package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// fuzzRequest is a run request as a runner sends one: the seed the fuzzer starts from.
func fuzzRequest(f *testing.F) []byte {
	f.Helper()
	b, err := proto.Marshal(&pb.RunRequest{
		Job: "db-backup", ScheduledAt: timestamppb.New(time.Date(2026, 11, 26, 15, 4, 5, 123e6, time.UTC)),
		Attempt: 2, FencingToken: 1772900000000001, OccurrenceId: "db-backup@2026-11-26T15:04:05.123Z",
		Node: "node-a", Settings: []byte(`{"url":"http://x","method":null}`), StopWithinMs: 25000,
	})
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzRunRequest feeds run requests to the plugin's side (server.Run), as the session
// hands them over after proto.Unmarshal. A request either reaches the handler, with every
// field as sent and the schema's defaults filled into its settings, or, when its settings
// are no JSON object, fails permanently without reaching it. A run encoded as the runner
// encodes it (pluginhost's toProto) reaches the handler as it was.
func FuzzRunRequest(f *testing.F) {
	f.Add(fuzzRequest(f), "job", "job@2026-01-01T00:00:00.000Z", "node", int64(1767225600), int32(5e8), int32(1), int64(7),
		[]byte(`{"url":"u","expect":null}`), int64(30000))
	f.Add([]byte{}, "", "", "", int64(-62135596800), int32(0), int32(-1), int64(-1), []byte(` `), int64(0))
	f.Add([]byte("\x12\x06\x08\xff\xff\xff\xff\x07\x3a\x02[]\x48\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"), "é", "@", "\u2028",
		int64(253402300799), int32(999999999), int32(2147483647), int64(-9223372036854775808), []byte(`null`), int64(1<<40))
	f.Fuzz(func(t *testing.T, data []byte, job, occ, node string, sec int64, nsec, attempt int32, token int64,
		settings []byte, stopMS int64) {
		var req pb.RunRequest
		if err := proto.Unmarshal(data, &req); err == nil {
			got, res := serveRun(t, &req)
			want, err := testSchema.applyDefaults(req.GetSettings())
			switch {
			case err != nil:
				if got != nil || !res.GetHasError() || !res.GetPermanent() {
					t.Fatalf("settings %q: the handler got %+v, result %v; want a permanent error", req.GetSettings(), got, res)
				}
			case got == nil:
				t.Fatalf("request %v: the handler was not called, result %v", &req, res)
			default:
				checkRun(t, &req, got, want)
			}
		}

		// The round trip: a run as the runner has one, encoded as pluginhost's toProto does.
		ts := timestamppb.New(time.Unix(sec, int64(nsec)))
		if ts.CheckValid() != nil || stopMS < 0 || stopMS > int64(time.Duration(1<<63-1)/time.Millisecond) {
			return
		}
		run := &Run{Job: job, ScheduledAt: ts.AsTime(), Attempt: int(attempt), FencingToken: token, OccurrenceID: occ,
			Node: node, Settings: settings, StopWithin: time.Duration(stopMS) * time.Millisecond}
		sent := &pb.RunRequest{Job: run.Job, Attempt: int32(run.Attempt), FencingToken: run.FencingToken,
			OccurrenceId: run.OccurrenceID, Node: run.Node, Settings: run.Settings, StopWithinMs: run.StopWithin.Milliseconds(),
			ScheduledAt: timestamppb.New(run.ScheduledAt)}
		b, err := proto.Marshal(sent)
		if err != nil {
			return // a string that is not UTF-8: pluginwire refuses to send it
		}
		req.Reset()
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Fatalf("the runner's request %v does not decode: %v", sent, err)
		}
		got, _ := serveRun(t, &req)
		wantSettings, err := testSchema.applyDefaults(settings)
		if err != nil {
			return
		}
		run.Settings = wantSettings
		if diff := cmp.Diff(run, got, cmpopts.IgnoreUnexported(Run{})); diff != "" {
			t.Fatalf("run (-sent +handled):\n%s", diff)
		}
	})
}

// serveRun has a server of testSchema run req, and returns the run its handler got (nil
// if it was not called) and the result.
func serveRun(t *testing.T, req *pb.RunRequest) (*Run, *pb.RunResult) {
	t.Helper()
	var got *Run
	srv := &server{log: slog.New(slog.DiscardHandler), base: t.Context(), h: Func(testSchema, func(_ context.Context, r *Run) (*Result, error) {
		got = r
		return &Result{Message: "ok"}, nil
	})}
	res, err := srv.Run(t.Context(), req, time.Time{}, nil)
	if err != nil {
		t.Fatalf("Run(%v): %v", req, err)
	}
	return got, res
}

// checkRun checks the run a handler got for req, whose settings with defaults are want.
func checkRun(t *testing.T, req *pb.RunRequest, got *Run, want json.RawMessage) {
	t.Helper()
	var at time.Time
	if req.GetScheduledAt() != nil {
		at = req.GetScheduledAt().AsTime()
	}
	if got.Job != req.GetJob() || got.OccurrenceID != req.GetOccurrenceId() || got.Node != req.GetNode() ||
		got.Attempt != int(req.GetAttempt()) || got.FencingToken != req.GetFencingToken() || !got.ScheduledAt.Equal(at) ||
		got.StopWithin != time.Duration(req.GetStopWithinMs())*time.Millisecond || !bytes.Equal(got.Settings, want) {
		t.Fatalf("request %v: the handler got %+v", req, got)
	}
	var obj map[string]any
	if err := json.Unmarshal(got.Settings, &obj); err != nil && !isRange(err) {
		t.Fatalf("request %v: settings %s are not a JSON object: %v", req, got.Settings, err)
	}
	for _, a := range testSchema.Attributes {
		if v, ok := obj[a.Name]; a.Default != nil && obj != nil && (!ok || v == nil) {
			t.Fatalf("request %v: settings %s without the default of %q", req, got.Settings, a.Name)
		}
	}
}

// isRange reports whether err is a JSON number too large for a float64: the settings are
// passed on as JSON, and only such a number does not decode into any.
func isRange(err error) bool {
	var ute *json.UnmarshalTypeError
	return errors.As(err, &ute) && ute.Value == "number"
}

// fuzzSettings is a Go value a handler of testSchema decodes its settings into.
type fuzzSettings struct {
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Expect  []float64         `json:"expect"`
	Headers map[string]string `json:"headers"`
	Verbose bool              `json:"verbose"`
	Extra   any               `json:"extra"`
}

// fuzzChecker checks settings the way a plugin's Check does: by decoding them.
type fuzzChecker struct{ Handler }

func (fuzzChecker) Check(run *Run) error {
	var s fuzzSettings
	if err := run.Decode(&s); err != nil {
		return err
	}
	if s.Method == "PANIC" {
		panic("checker panicked")
	}
	if s.URL == "" {
		return InvalidSetting("url", "is empty")
	}
	return nil
}

// FuzzSettings checks settings JSON against a schema, as a runner's handler block arrives.
// CheckSettings, filling the defaults and the plugin's Check never panic. Settings that
// CheckSettings accepts get the defaults of what they leave out or set to null, keep what
// they set, still pass CheckSettings, and decode into the Go value that matches the schema.
func FuzzSettings(f *testing.F) {
	for _, s := range []string{
		`{"url":"http://x"}`,
		`{"url":"http://x","method":null,"expect":[1,2],"headers":{"A":"b"},"verbose":true,"extra":[{"a":1}]}`,
		``, `null`, `[]`, `{"url":1}`, `{"url":"u","url":"v"}`, `{"URL":"u"}`, `{"url":"u","expect":[1e400]}`,
		`{"url":"u","method":"PANIC"}`, `{"url":"\ud800","headers":{"\xff":"\xfe"}} `, `{"url":"u"} {}`,
	} {
		f.Add([]byte(s))
	}
	d, err := testSchema.encodeDefaults()
	if err != nil {
		f.Fatal(err)
	}
	checker := fuzzChecker{Func(testSchema, nil)}
	f.Fuzz(func(t *testing.T, settings []byte) {
		_ = Check(checker, settings)
		filled, fillErr := d.fill(settings)
		if testSchema.CheckSettings(settings) != nil {
			return
		}
		if fillErr != nil {
			t.Fatalf("settings %q pass the schema, yet filling their defaults fails: %v", settings, fillErr)
		}
		if err := testSchema.CheckSettings(filled); err != nil {
			t.Fatalf("settings %q pass the schema, with their defaults %s they do not: %v", settings, filled, err)
		}
		in, _ := settingsObject(settings)
		out, _ := settingsObject(filled)
		for _, a := range testSchema.Attributes {
			want := in[a.Name]
			if want == nil && a.Default != nil {
				want, _ = jsonValue(a.Default)
			}
			if diff := cmp.Diff(want, out[a.Name]); diff != "" {
				t.Fatalf("settings %q filled as %s: %s (-want +got):\n%s", settings, filled, a.Name, diff)
			}
		}
		var v fuzzSettings
		if err := (&Run{Settings: filled}).Decode(&v); err != nil {
			t.Fatalf("settings %q pass the schema, yet %s do not decode: %v", settings, filled, err)
		}
	})
}
