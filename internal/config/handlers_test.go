package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// webhookSchema is what a plugin might declare.
func webhookSchema(plugin string) ([]HandlerAttribute, error) {
	switch plugin {
	case "webhook":
		return []HandlerAttribute{
			{Name: "url", Type: "string", Required: true},
			{Name: "method", Type: "string", Default: []byte(`"POST"`)},
			{Name: "expect_status", Type: "list(number)", Default: []byte(`[200]`)},
			{Name: "headers", Type: "map(string)"},
			{Name: "retries", Type: "number"},
		}, nil
	case "broken":
		return nil, errors.New("plugin exited during start-up")
	}
	return nil, nil
}

func TestDecodeHandlersChecksSettingsAgainstTheSchema(t *testing.T) {
	t.Setenv("CRONFLEET_TEST_TOKEN", "s3cret")
	tests := []struct {
		name     string
		handler  string
		want     string // JSON settings, when valid
		wantDiag []string
	}{
		{
			name: "valid with expressions and defaults",
			handler: `handler "webhook" {
    url     = "https://example.invalid/${lower("HOOK")}"
    headers = { Authorization = "Bearer ${env("CRONFLEET_TEST_TOKEN")}" }
  }`,
			want: `{"expect_status":[200],"headers":{"Authorization":"Bearer s3cret"},"method":"POST","retries":null,"url":"https://example.invalid/hook"}`,
		},
		{
			name: "wrong type",
			handler: `handler "webhook" {
    url     = "x"
    retries = "many"
  }`,
			wantDiag: []string{`jobs.hcl:6:15: error: Incorrect attribute value type`},
		},
		{
			name:     "missing required",
			handler:  `handler "webhook" {}`,
			wantDiag: []string{`jobs.hcl:4:21: error: Missing required argument`, `"url"`},
		},
		{
			name: "misspelled",
			handler: `handler "webhook" {
    url    = "x"
    methd  = "GET"
  }`,
			wantDiag: []string{`jobs.hcl:6:5: error: Unsupported argument`, `Did you mean "method"?`},
		},
		{
			name: "unset env",
			handler: `handler "webhook" {
    url = env("CRONFLEET_TEST_UNSET")
  }`,
			wantDiag: []string{`jobs.hcl:5:16: error: Invalid function argument`, `"CRONFLEET_TEST_UNSET" is not set`},
		},
		{
			name:     "plugin cannot tell",
			handler:  `handler "broken" {}`,
			wantDiag: []string{`jobs.hcl:4:11: error: Plugin schema unavailable`, "plugin exited during start-up"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "job \"j\" {\n  schedule = \"@daily\"\n\n  " + tc.handler + "\n}\n"
			cfg, srcs, diags := Parse("jobs.hcl", []byte(src))
			if !diags.HasErrors() {
				diags = cfg.DecodeHandlers(webhookSchema)
			}
			var out strings.Builder
			_ = srcs.WriteDiagnostics(&out, diags)
			if tc.wantDiag == nil {
				if diags.HasErrors() {
					t.Fatalf("unexpected diagnostics:\n%s", out.String())
				}
				got := string(cfg.Jobs[0].Handler.Settings)
				var a, b any
				_ = json.Unmarshal([]byte(tc.want), &a)
				_ = json.Unmarshal([]byte(got), &b)
				if diff := cmp.Diff(a, b); diff != "" {
					t.Errorf("settings (-want +got):\n%s", diff)
				}
				return
			}
			for _, w := range tc.wantDiag {
				if !strings.Contains(out.String(), w) {
					t.Errorf("diagnostics lack %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestDecodeHandlersRehashes(t *testing.T) {
	cfg, _, diags := Parse("jobs.hcl", []byte("job \"j\" {\n  schedule = \"@daily\"\n  handler \"webhook\" {\n    url = \"x\"\n  }\n}\n"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	before := cfg.Jobs[0].Hash
	if d := cfg.DecodeHandlers(webhookSchema); d.HasErrors() {
		t.Fatal(d)
	}
	if cfg.Jobs[0].Hash == before {
		t.Error("the hash did not change although defaults were filled in")
	}
}

// TestCheckHandlersLocatesProblems: a plugin's own findings are reported at the value of
// the attribute they name, or at the block when the attribute is not set (say, one of two
// that must be given); a plugin that cannot answer is reported once, at its name.
func TestCheckHandlersLocatesProblems(t *testing.T) {
	src := `job "a" {
  schedule = "@daily"
  handler "webhook" {
    url    = "ftp://example.invalid"
    method = "GET"
  }
}
job "b" {
  schedule = "@daily"
  handler "webhook" {
    url = "https://example.invalid"
  }
}
job "c" {
  schedule = "@daily"
  handler "broken" {}
}
job "d" {
  schedule = "@daily"
  handler "broken" {}
}
`
	cfg, srcs, diags := Parse("jobs.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	check := func(plugin string, settings json.RawMessage) ([]HandlerProblem, error) {
		if plugin == "broken" {
			return nil, errors.New("plugin exited")
		}
		var s struct{ URL string }
		if err := json.Unmarshal(settings, &s); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(s.URL, "ftp:") {
			return []HandlerProblem{
				{Attribute: "url", Message: "must be an http:// or https:// URL."},
				{Attribute: "body", Message: "is required with method GET"},
			}, nil
		}
		return nil, nil
	}
	schema := func(string) ([]HandlerAttribute, error) {
		return []HandlerAttribute{{Name: "url", Type: "string"}, {Name: "method", Type: "string"}}, nil
	}
	if diags := cfg.DecodeHandlers(schema); diags.HasErrors() {
		t.Fatal(diags)
	}
	diags = cfg.CheckHandlers(check)
	var got []string
	for _, d := range diags {
		got = append(got, d.Subject.String()+": "+d.Summary+": "+d.Detail)
	}
	want := []string{
		`jobs.hcl:4,14-37: Invalid handler setting: The "webhook" handler of job "a" refuses its settings: url: must be an http:// or https:// URL.`,
		`jobs.hcl:3,3-20: Invalid handler setting: The "webhook" handler of job "a" refuses its settings: body: is required with method GET.`,
		`jobs.hcl:16,11-19: Plugin check unavailable: The settings of the "broken" handler cannot be checked: plugin exited.`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
		var out strings.Builder
		_ = srcs.WriteDiagnostics(&out, diags)
		t.Log(out.String())
	}
}

// TestDecodeHandlersRefusesNullElements: HCL lets a list or a map hold null, a handler's
// settings cannot (the SDK's CheckSettings refuses them), so the job file is refused, at
// the attribute. Found by pluginhost's FuzzSchema.
func TestDecodeHandlersRefusesNullElements(t *testing.T) {
	schema := func(string) ([]HandlerAttribute, error) {
		return []HandlerAttribute{
			{Name: "url", Type: "string"},
			{Name: "command", Type: "list(string)"},
			{Name: "env", Type: "map(string)", Default: []byte(`{"A":"b"}`)},
			{Name: "ids", Type: "set(number)"},
			{Name: "extra", Type: "any"},
		}, nil
	}
	for _, tc := range []struct{ body, want string }{
		{`command = ["echo", null]`, `jobs.hcl:4:15: error: Incorrect attribute value type; Inappropriate value for attribute "command": element 1 is null, and a list of string cannot hold null.`},
		{`env = { A = "b", C = null }`, `jobs.hcl:4:11: error: Incorrect attribute value type; Inappropriate value for attribute "env": element "C" is null, and a map of string cannot hold null.`},
		{`ids = [1, null]`, `jobs.hcl:4:11: error: Incorrect attribute value type; Inappropriate value for attribute "ids": element is null, and a set of number cannot hold null.`},
		{"command = null\n    env = null\n    extra = [null, { a = null }]", ``},
	} {
		t.Run(tc.body, func(t *testing.T) {
			src := "job \"j\" {\n  schedule = \"@daily\"\n  handler \"p\" {\n    " + tc.body + "\n  }\n}\n"
			cfg, _, diags := Parse("jobs.hcl", []byte(src))
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			var got []string
			for _, d := range cfg.DecodeHandlers(schema) {
				got = append(got, fmt.Sprintf("%s:%d:%d: error: %s; %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, d.Summary, d.Detail))
			}
			var want []string
			if tc.want != "" {
				want = []string{tc.want}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckHandlersAsksOncePerSettings: jobs with equal settings cost one check, and each
// of them is still reported at its own block.
func TestCheckHandlersAsksOncePerSettings(t *testing.T) {
	var src strings.Builder
	for i := range 50 {
		fmt.Fprintf(&src, "job \"j%02d\" {\n  schedule = \"@daily\"\n  handler \"webhook\" {\n    url = \"ftp://host/%d\"\n  }\n}\n", i, i%3)
	}
	cfg, _, diags := Parse("jobs.hcl", []byte(src.String()))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if diags := cfg.DecodeHandlers(webhookSchema); diags.HasErrors() {
		t.Fatal(diags)
	}
	var calls atomic.Int64
	diags = cfg.CheckHandlers(func(_ string, settings json.RawMessage) ([]HandlerProblem, error) {
		calls.Add(1)
		return []HandlerProblem{{Attribute: "url", Message: "not http"}}, nil
	})
	if n := calls.Load(); n != 3 {
		t.Errorf("%d checks for 3 distinct settings", n)
	}
	if len(diags) != 50 {
		t.Fatalf("%d diagnostics, want one per job", len(diags))
	}
	for i, d := range diags {
		if want := 4 + 6*i; d.Subject.Start.Line != want || !strings.Contains(d.Detail, fmt.Sprintf("job \"j%02d\"", i)) {
			t.Errorf("diagnostic %d at line %d (want %d): %s", i, d.Subject.Start.Line, want, d.Detail)
		}
	}
}

// TestAlertHandlers: an alert's handler block is decoded, checked and looked up like the
// job's own, its problems are reported at its lines, and it is part of the job's hash.
func TestAlertHandlers(t *testing.T) {
	job := func(alert string) string {
		return "job \"j\" {\n  schedule = \"@daily\"\n  handler \"webhook\" {\n    url = \"x\"\n  }\n  alert {\n    on = [\"failure\"]\n    " + alert + "\n  }\n}\n"
	}
	cfg, _, diags := Parse("jobs.hcl", []byte(job(`handler "webhook" { url = "y" }`)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if d := cfg.DecodeHandlers(webhookSchema); d.HasErrors() {
		t.Fatal(d)
	}
	if got, want := string(cfg.Jobs[0].Alert.Handler.Settings), `{"expect_status":[200],"headers":null,"method":"POST","retries":null,"url":"y"}`; got != want {
		t.Errorf("alert settings = %s, want %s", got, want)
	}
	other, _, _ := Parse("jobs.hcl", []byte(job(`handler "webhook" { url = "z" }`)))
	if d := other.DecodeHandlers(webhookSchema); d.HasErrors() {
		t.Fatal(d)
	}
	if cfg.Jobs[0].Hash == other.Jobs[0].Hash {
		t.Error("two jobs whose alerts differ have one hash")
	}
	var (
		mu    sync.Mutex // CheckHandlers asks its questions concurrently
		asked []string
	)
	d := cfg.CheckHandlers(func(plugin string, settings json.RawMessage) ([]HandlerProblem, error) {
		mu.Lock()
		asked = append(asked, string(settings))
		mu.Unlock()
		if strings.Contains(string(settings), `"url":"y"`) {
			return []HandlerProblem{{Attribute: "url", Message: "not a URL"}}, nil
		}
		return nil, nil
	})
	if len(asked) != 2 || len(d) != 1 || !strings.Contains(d[0].Detail, `"webhook" alert handler of job "j"`) || d[0].Subject.Start.Line != 8 {
		t.Errorf("CheckHandlers asked %v and said %v", asked, d)
	}

	bad, srcs, _ := Parse("jobs.hcl", []byte(job(`handler "webhook" { methd = "GET" }`)))
	d = bad.DecodeHandlers(webhookSchema)
	var out strings.Builder
	_ = srcs.WriteDiagnostics(&out, d)
	for _, w := range []string{`jobs.hcl:8:25: error: Missing required argument`, `Did you mean "method"?`} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("diagnostics lack %q:\n%s", w, out.String())
		}
	}
	unknown, _, _ := Parse("jobs.hcl", []byte(job(`handler "nosuch" {}`)))
	if d := unknown.CheckPlugins(func(name string) bool { return name == "webhook" }); len(d) != 1 || d[0].Subject.Start.Line != 8 {
		t.Errorf("CheckPlugins = %v, want the alert's unknown plugin", d)
	}
}
