package config

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse checks that no input makes Parse or rendering panic, that a config
// without errors is complete, and that cutting the input into pieces changes
// nothing. Seeds are the testdata job files.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.hcl")
	if err != nil {
		f.Fatal(err)
	}
	more, _ := filepath.Glob("testdata/*/*.hcl")
	for _, name := range append(seeds, more...) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if whole, cutAll := render(t, "fuzz.hcl", src, math.MaxInt), render(t, "fuzz.hcl", src, 1); whole != cutAll {
			t.Fatalf("loaded in pieces, the file loads differently (-one piece +pieces):\n%s", cmp.Diff(whole, cutAll))
		}
		cfg, sources, diags := Parse("fuzz.hcl", src)
		if err := sources.WriteDiagnostics(io.Discard, diags); err != nil {
			t.Fatalf("WriteDiagnostics: %v", err)
		}
		if (cfg == nil) != diags.HasErrors() {
			t.Fatalf("config is nil: %v, diagnostics have errors: %v", cfg == nil, diags.HasErrors())
		}
		if cfg == nil {
			for _, d := range diags {
				if d.Summary == "" {
					t.Errorf("diagnostic without summary: %#v", d)
				}
			}
			return
		}
		_ = cfg.CheckPlugins(func(string) bool { return false })
		if checkNamespace(cfg.Runner.Namespace) != "" || cfg.Runner.Lease < MinLease {
			t.Errorf("invalid runner accepted: %+v", cfg.Runner)
		}
		for i, j := range cfg.Jobs {
			if i > 0 && cfg.Jobs[i-1].Name >= j.Name {
				t.Errorf("jobs not sorted or not unique: %q, %q", cfg.Jobs[i-1].Name, j.Name)
			}
			if checkJobName(j.Name) != "" || j.Sched == nil || j.Location == nil || j.Handler.Body == nil {
				t.Errorf("incomplete job accepted: %+v", j)
			}
			if j.Timeout < 0 || j.Retry.Attempts < 1 || j.Retry.Backoff < 0 || j.Retry.MaxBackoff < j.Retry.Backoff {
				t.Errorf("invalid job accepted: %+v", j)
			}
			var settings map[string]any
			if err := json.Unmarshal(j.Handler.Settings, &settings); err != nil || settings == nil {
				t.Errorf("job %q: settings %s are not a JSON object: %v", j.Name, j.Handler.Settings, err)
			}
			if h, err := hex.DecodeString(j.Hash); err != nil || len(h) != 32 {
				t.Errorf("job %q: hash %q", j.Name, j.Hash)
			}
		}
	})
}
