package config

import (
	"strings"
	"testing"
)

// TestPlacementSettings: the node's capacity in the runner block and a job's fleet-wide
// max_concurrent decode, change the job's hash, and are refused where they mean nothing.
func TestPlacementSettings(t *testing.T) {
	const job = `job "j" {
  schedule = "@daily"
  overlap  = "allow"
  EXTRA
  handler "exec" {
    command = ["true"]
  }
}
`
	parse := func(t *testing.T, src string) (*Config, string) {
		t.Helper()
		cfg, _, diags := Parse("j.hcl", []byte(src))
		if diags.HasErrors() {
			return nil, diags.Error()
		}
		return cfg, ""
	}
	cfg, errs := parse(t, "runner {\n  concurrency = 4\n}\n"+strings.Replace(job, "EXTRA", "max_concurrent = 2", 1))
	if errs != "" {
		t.Fatal(errs)
	}
	if cfg.Runner.Concurrency != 4 || cfg.Jobs[0].MaxConcurrent != 2 {
		t.Errorf("runner concurrency %d, job max_concurrent %d; want 4 and 2", cfg.Runner.Concurrency, cfg.Jobs[0].MaxConcurrent)
	}
	plain, errs := parse(t, strings.Replace(job, "EXTRA", "", 1))
	if errs != "" {
		t.Fatal(errs)
	}
	if plain.Runner.Concurrency != 0 || plain.Jobs[0].MaxConcurrent != 0 {
		t.Errorf("unset: runner concurrency %d, job max_concurrent %d; want 0 and 0", plain.Runner.Concurrency, plain.Jobs[0].MaxConcurrent)
	}
	if plain.Jobs[0].Hash == cfg.Jobs[0].Hash {
		t.Error("max_concurrent did not change the job's hash")
	}
	for name, tc := range map[string]struct{ src, want string }{
		"capacity zero":      {"runner {\n  concurrency = 0\n}\n" + strings.Replace(job, "EXTRA", "", 1), "must be a whole number from 1"},
		"max_concurrent 0":   {strings.Replace(job, "EXTRA", "max_concurrent = 0", 1), "must be a whole number from 1"},
		"overlap not allow":  {strings.Replace(strings.Replace(job, "EXTRA", "max_concurrent = 2", 1), `"allow"`, `"skip"`, 1), `max_concurrent needs overlap = "allow"`},
		"overlap by default": {strings.Replace(strings.Replace(job, "EXTRA", "max_concurrent = 2", 1), `overlap  = "allow"`, "", 1), `max_concurrent needs overlap = "allow"`},
	} {
		t.Run(name, func(t *testing.T) {
			if _, errs := parse(t, tc.src); !strings.Contains(errs, tc.want) {
				t.Errorf("diagnostics %q, want one containing %q", errs, tc.want)
			}
		})
	}
}
