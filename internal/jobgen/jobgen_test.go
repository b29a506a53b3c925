package jobgen_test

import (
	"bytes"
	"testing"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/jobgen"
)

// TestWriteLoads: what the benchmarks load is a valid job file, the same for the same seed.
func TestWriteLoads(t *testing.T) {
	var a, b bytes.Buffer
	for _, buf := range []*bytes.Buffer{&a, &b} {
		if err := jobgen.Write(buf, jobgen.Config{Jobs: 300, Seed: 7, Namespace: "gen"}); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two writes with the same seed differ")
	}
	cfg, src, diags := config.Parse("gen.hcl", a.Bytes())
	if len(diags) > 0 {
		var out bytes.Buffer
		_ = src.WriteDiagnostics(&out, diags)
		t.Fatalf("the generated file does not load:\n%s", out.String())
	}
	if len(cfg.Jobs) != 300 || cfg.Runner.Namespace != "gen" {
		t.Errorf("loaded %d jobs in namespace %q, want 300 in \"gen\"", len(cfg.Jobs), cfg.Runner.Namespace)
	}
}
