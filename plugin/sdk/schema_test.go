package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// TestTypesAreHCL: every Type's String is an HCL type constraint of the
// documented cty type, so the runner can hand it to typeexpr.
func TestTypesAreHCL(t *testing.T) {
	want := map[Type]cty.Type{
		TypeString:     cty.String,
		TypeNumber:     cty.Number,
		TypeBool:       cty.Bool,
		TypeListString: cty.List(cty.String),
		TypeListNumber: cty.List(cty.Number),
		TypeMapString:  cty.Map(cty.String),
		TypeAny:        cty.DynamicPseudoType,
	}
	if len(Types()) != len(want) {
		t.Fatalf("Types() = %v, want the %d documented", Types(), len(want))
	}
	for _, ty := range Types() {
		expr, diags := hclsyntax.ParseExpression([]byte(ty.String()), "type", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", ty, diags)
		}
		got, diags := typeexpr.TypeConstraint(expr)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", ty, diags)
		}
		if !got.Equals(want[ty]) {
			t.Errorf("%s is %s in HCL, want %s", ty, typeexpr.TypeString(got), typeexpr.TypeString(want[ty]))
		}
		if p, err := ParseType(" " + ty.String() + " "); err != nil || p != ty {
			t.Errorf("ParseType(%q) = %q, %v", ty, p, err)
		}
	}
	if _, err := ParseType("set(string)"); err == nil {
		t.Error("ParseType accepted set(string)")
	}
}

func TestSchemaValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		attrs   []Attribute
		wantErr []string
	}{
		{name: "empty"},
		{name: "ok", attrs: []Attribute{
			{Name: "command", Type: TypeListString},
			{Name: "retries", Type: TypeNumber, Default: 3},
			{Name: "tags", Type: TypeListNumber, Default: []int{1, 2}},
			{Name: "env", Type: TypeMapString, Default: map[string]string{"A": "b"}},
			{Name: "x-y_z", Type: TypeAny, Default: map[string]any{"deep": []any{1, "a"}}},
			{Name: "url", Type: TypeString, Required: true},
		}},
		{name: "bad", attrs: []Attribute{
			{Type: TypeString},
			{Name: "1st", Type: TypeString},
			{Name: "a", Type: TypeString},
			{Name: "a", Type: TypeBool},
			{Name: "b", Type: "set(string)"},
			{Name: "c", Type: TypeString, Required: true, Default: "x"},
			{Name: "d", Type: TypeNumber, Default: "3"},
			{Name: "e", Type: TypeAny, Default: func() {}},
		}, wantErr: []string{
			"attribute 0: empty name",
			`"1st": name is not an identifier`,
			`"a": declared twice`,
			`"b": unknown type "set(string)"`,
			`"c": required, yet has a default`,
			`"d": default "3" is not a number`,
			`"e": default: json: unsupported type`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Schema{Attributes: tc.attrs}.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid schema accepted")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

var testSchema = Schema{Attributes: []Attribute{
	{Name: "url", Type: TypeString, Required: true},
	{Name: "method", Type: TypeString, Default: "GET"},
	{Name: "expect", Type: TypeListNumber, Default: []int{200}},
	{Name: "headers", Type: TypeMapString},
	{Name: "verbose", Type: TypeBool},
	{Name: "extra", Type: TypeAny},
}}

func TestCheckSettings(t *testing.T) {
	for _, tc := range []struct {
		settings string
		wantErr  []string
	}{
		{settings: `{"url":"http://x"}`},
		{settings: `{"url":"http://x","method":null,"expect":[1,2],"headers":{"A":"b"},"verbose":true,"extra":[{"a":1}]}`},
		{settings: ``, wantErr: []string{`missing required attribute "url" (string)`}},
		{settings: `{"url":null}`, wantErr: []string{`missing required attribute "url"`}},
		{settings: `{"url":1,"expect":["200"],"headers":{"A":1},"verbose":"yes","urll":"x"}`, wantErr: []string{
			`"url": 1 is not a string`, `"expect": ["200"] is not a list(number)`,
			`"headers": {"A":1} is not a map(string)`, `"verbose": "yes" is not a bool`, `unknown attribute "urll"`,
		}},
		{settings: `[1]`, wantErr: []string{"not a JSON object"}},
	} {
		t.Run(tc.settings, func(t *testing.T) {
			err := testSchema.CheckSettings(json.RawMessage(tc.settings))
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("settings accepted")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	got, err := testSchema.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"expect":[200],"method":"GET"}` {
		t.Errorf("Defaults() = %s", got)
	}
	for in, want := range map[string]string{
		``:                              `{"expect":[200],"method":"GET"}`,
		`{"method":"POST","expect":[]}`: `{"method":"POST","expect":[]}`,
		`{"method":null,"expect":[1]}`:  `{"expect":[1],"method":"GET"}`,
	} {
		d, err := testSchema.encodeDefaults()
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.fill(json.RawMessage(in))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("fill(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad settings")
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	p := Permanent(base)
	wrapped := fmt.Errorf("job x: %w", p)
	if !IsPermanent(p) || !IsPermanent(wrapped) || IsPermanent(base) || IsPermanent(nil) {
		t.Error("IsPermanent disagrees")
	}
	if !errors.Is(wrapped, base) || p.Error() != "bad settings" {
		t.Errorf("Permanent hides its error: %v", wrapped)
	}
	if err := (&Run{Settings: json.RawMessage(`{"x":1}`)}).Decode(&struct{}{}); !IsPermanent(err) {
		t.Errorf("Decode error %v is not permanent", err)
	}
}

// TestServerSchemaDefaultsPermanent goes over the wire: the schema, the
// defaults a handler sees, and the permanent mark.
func TestServerSchemaDefaultsPermanent(t *testing.T) {
	var got json.RawMessage
	h := connect(t, &server{log: slog.New(slog.DiscardHandler), base: t.Context(), h: Func(testSchema, func(_ context.Context, r *Run) (*Result, error) {
		got = r.Settings
		return nil, Permanent(errors.New("refused"))
	})})
	sch, err := h.Schema(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(sch.GetAttributes()) != 6 || string(sch.GetAttributes()[2].GetDefaultJson()) != "[200]" || sch.GetAttributes()[0].GetType() != "string" || !sch.GetAttributes()[0].GetRequired() {
		t.Errorf("schema = %v, want testSchema's six attributes with expect's default [200]", sch)
	}
	res, err := h.Run(t.Context(), &pb.RunRequest{Settings: []byte(`{"url":"u"}`)}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`{"expect":[200],"method":"GET","url":"u"}`, string(got)); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	if !res.GetHasError() || !res.GetPermanent() || res.GetError() != "refused" {
		t.Errorf("result = %v, want a permanent error", res)
	}
}

func TestServerRefusesInvalidSchema(t *testing.T) {
	h := connect(t, &server{log: slog.New(slog.DiscardHandler), base: t.Context(), h: Func(Schema{Attributes: []Attribute{{Name: "a"}}}, nil)})
	if _, err := h.Schema(t.Context()); err == nil || !strings.Contains(err.Error(), `unknown type ""`) {
		t.Errorf("err = %v, want the invalid schema", err)
	}
}

// TestWatchdog: a handler that ignores its cancellation past the grace is
// reported as stuck (Serve then exits the process).
func TestWatchdog(t *testing.T) {
	stuck := make(chan *Run, 1)
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	h := connect(t, &server{log: slog.New(slog.DiscardHandler), base: t.Context(), cancelGrace: 50 * time.Millisecond,
		stuck: func(r *Run) { stuck <- r },
		h: HandlerFunc(func(context.Context, *Run) (*Result, error) {
			close(started)
			<-release
			return nil, nil
		})})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { _, _ = h.Run(ctx, &pb.RunRequest{Job: "hung"}, time.Time{}, nil) }()
	<-started
	cancel()
	select {
	case r := <-stuck:
		if r.Job != "hung" {
			t.Errorf("stuck run %q", r.Job)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the watchdog never fired")
	}

	// The run's StopWithin shortens the grace: past it, another node may hold the lease.
	stuck2 := make(chan *Run, 1)
	started2 := make(chan struct{})
	h = connect(t, &server{log: slog.New(slog.DiscardHandler), base: t.Context(), cancelGrace: time.Hour,
		stuck: func(r *Run) { stuck2 <- r },
		h: HandlerFunc(func(context.Context, *Run) (*Result, error) {
			close(started2)
			<-release
			return nil, nil
		})})
	ctx2, cancel2 := context.WithCancel(t.Context())
	go func() { _, _ = h.Run(ctx2, &pb.RunRequest{Job: "short-lease", StopWithinMs: 50}, time.Time{}, nil) }()
	<-started2
	cancel2()
	select {
	case r := <-stuck2:
		if r.StopWithin != 50*time.Millisecond {
			t.Errorf("stuck run's StopWithin = %v, want 50ms", r.StopWithin)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the watchdog waited for its hour-long grace instead of the run's StopWithin")
	}

	// A handler that honours its ctx is not stuck.
	h = connect(t, &server{log: slog.New(slog.DiscardHandler), base: t.Context(), cancelGrace: time.Hour,
		stuck: func(*Run) { t.Error("stuck called for a handler that returned") },
		h:     HandlerFunc(func(context.Context, *Run) (*Result, error) { return nil, nil })})
	if _, err := h.Run(t.Context(), &pb.RunRequest{}, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
}
