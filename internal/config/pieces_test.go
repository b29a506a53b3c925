package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/jobgen"
)

// render is everything a load of data shows, with pieces of at least size bytes: each
// diagnostic's range, the rendered diagnostics and a summary of the config, with every
// job's ranges.
func render(t *testing.T, name string, data []byte, size int) string {
	t.Helper()
	cfg, src, diags := parse(name, data, size)
	var b bytes.Buffer
	for _, d := range diags {
		fmt.Fprintf(&b, "%s: %s\n", d.Subject, d.Summary)
	}
	if err := src.WriteDiagnostics(&b, diags); err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		// The handler blocks, decoded and checked from their source kept by the load.
		diags := cfg.DecodeHandlers(func(plugin string) ([]HandlerAttribute, error) {
			return []HandlerAttribute{
				{Name: "command", Type: "list(string)"}, {Name: "shell", Type: "string"},
				{Name: "env", Type: "map(string)"}, {Name: "url", Type: "string", Required: plugin == "http"},
				{Name: "method", Type: "string", Default: []byte(`"GET"`)},
				{Name: "headers", Type: "map(string)"}, {Name: "body", Type: "string"},
			}, nil
		})
		diags = append(diags, cfg.CheckHandlers(func(plugin string, settings json.RawMessage) ([]HandlerProblem, error) {
			if bytes.Contains(settings, []byte("/hooks/1")) {
				return []HandlerProblem{{Attribute: "url", Message: "refused"}, {Attribute: "body", Message: "refused too"}}, nil
			}
			return nil, nil
		})...)
		if err := src.WriteDiagnostics(&b, diags); err != nil {
			t.Fatal(err)
		}
		writeSummary(&b, cfg)
		for _, j := range cfg.Jobs {
			fmt.Fprintf(&b, "%s: %s %s %s\n", j.Name, j.DeclRange, j.Handler.DefRange, j.Handler.LabelRange)
		}
	}
	return b.String()
}

// TestPiecesLoadLikeOnePiece: a file cut into pieces at every line that is a lone "}"
// loads exactly like the file in one piece, whether the cuts fall between blocks or inside
// heredocs, comments and nested blocks, and whatever the file's mistakes.
func TestPiecesLoadLikeOnePiece(t *testing.T) {
	inputs := map[string][]byte{}
	names, err := filepath.Glob("testdata/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		inputs[filepath.Base(name)] = data
	}
	var gen bytes.Buffer
	if err := jobgen.Write(&gen, jobgen.Config{Jobs: 60, Seed: 3, Namespace: "pieces"}); err != nil {
		t.Fatal(err)
	}
	inputs["generated"] = gen.Bytes()
	inputs["generated_crlf"] = bytes.ReplaceAll(gen.Bytes(), []byte("\n"), []byte("\r\n"))
	inputs["generated_bad_cron"] = bytes.Replace(gen.Bytes(), []byte(`schedule = "`), []byte(`schedule = "61 `), 1)
	first := gen.Bytes()[bytes.Index(gen.Bytes(), []byte("job ")):]
	inputs["generated_duplicate"] = append(slices.Clone(gen.Bytes()), first[:bytes.Index(first, []byte("\n}\n"))+3]...)
	inputs["heredoc"] = []byte(`job "a" {
  schedule = "@daily"
  handler "exec" {
    shell = <<EOT
echo {
}
EOT
  }
}
job "b" {
  schedule = "@hourly"
  handler "exec" {
    command = ["true"]
}
}
`)
	inputs["comment"] = []byte(`job "a" {
  schedule = "@daily"
  handler "exec" { command = ["true"] }
}
/*
job "b" {
}
*/
job "c" {
  schedule = "@daily"
  handler "exec" { command = ["true"] }
}
`)
	inputs["unclosed"] = []byte(`job "a" {
  schedule = "@daily"
  handler "exec" { command = ["true"] }
}
job "b" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
}
`)
	inputs["long_digits"] = []byte("job \"a\" {\n  schedule = \"@daily\"\n  handler \"exec\" {\n    n = " +
		strings.Repeat("9", 400) + "\n    m = 0." + strings.Repeat("0", 400) + "1\n  }\n}\n")
	inputs["exponent"] = []byte("job \"a\" {\n  schedule = \"@daily\"\n  handler \"exec\" {\n    n = 1E+0310\n  }\n}\n")
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			whole, cutAll := render(t, name, data, math.MaxInt), render(t, name, data, 1)
			if diff := cmp.Diff(whole, cutAll); diff != "" {
				t.Errorf("in pieces (-one piece +pieces):\n%s", diff)
			}
		})
	}
	// The generated file is cut, not parsed again in one piece.
	_, src, diags := parse("generated", inputs["generated"], 1)
	if _, ok := src.files["generated"].Nav.(navigation); !ok || len(diags) > 0 {
		t.Errorf("the generated file was not loaded in pieces (%d diagnostics)", len(diags))
	}
	_, src, _ = parse("generated_bad_cron", inputs["generated_bad_cron"], 1)
	if _, ok := src.files["generated_bad_cron"].Nav.(navigation); !ok {
		t.Error("a file with a semantic mistake was not loaded in pieces")
	}
	if !strings.Contains(render(t, "x", inputs["generated_bad_cron"], 1), `, in job "`) {
		t.Error("diagnostics of a file loaded in pieces do not name their job")
	}
}
