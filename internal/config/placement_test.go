package config

import (
	"strconv"
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

// TestPriority: a job's priority decodes from 0 to 100, is the default when unset, changes
// the job's hash only when it is not the default (so the hashes of jobs without one stay what
// they were), and a value out of range is an error pointing at it.
func TestPriority(t *testing.T) {
	const job = "job \"j\" {\n  schedule = \"@daily\"\n  EXTRA\n  handler \"exec\" {\n    command = [\"true\"]\n  }\n}\n"
	parse := func(t *testing.T, extra string) *Job {
		t.Helper()
		cfg, _, diags := Parse("j.hcl", []byte(strings.Replace(job, "EXTRA", extra, 1)))
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		return cfg.Jobs[0]
	}
	unset := parse(t, "")
	if unset.Priority != 50 {
		t.Errorf("unset priority = %d, want 50", unset.Priority)
	}
	if d := parse(t, "priority = 50"); d.Hash != unset.Hash {
		t.Error("priority = 50, the default, changed the job's hash")
	}
	for _, p := range []int{0, 90, 100} {
		j := parse(t, "priority = "+strconv.Itoa(p))
		if j.Priority != p {
			t.Errorf("priority = %d decoded as %d", p, j.Priority)
		}
		if j.Hash == unset.Hash {
			t.Errorf("priority = %d did not change the job's hash", p)
		}
	}
	for _, bad := range []string{"priority = 101", "priority = -1", "priority = 2.5", `priority = "high"`} {
		_, _, diags := Parse("j.hcl", []byte(strings.Replace(job, "EXTRA", bad, 1)))
		if !diags.HasErrors() {
			t.Errorf("%s: no error", bad)
			continue
		}
		if s := diags[0].Subject; s == nil || s.Start.Line != 3 {
			t.Errorf("%s: diagnostic %q does not point at line 3", bad, diags.Error())
		}
	}
}

// TestFanOutSettings: broadcast and shards decode, change the job's hash (shards by their
// number), and broadcast = false is the job as without it.
func TestFanOutSettings(t *testing.T) {
	const job = "job \"j\" {\n  schedule = \"@daily\"\n  EXTRA\n  handler \"exec\" {\n    command = [\"true\"]\n  }\n}\n"
	hashes := map[string]string{}
	for _, extra := range []string{"", "broadcast = false", "broadcast = true", "shards = 2", "shards = 3"} {
		cfg, _, diags := Parse("j.hcl", []byte(strings.Replace(job, "EXTRA", extra, 1)))
		if diags.HasErrors() {
			t.Fatalf("%s: %s", extra, diags.Error())
		}
		j := cfg.Jobs[0]
		if want := strings.HasSuffix(extra, "true"); j.Broadcast != want {
			t.Errorf("%s: broadcast %v", extra, j.Broadcast)
		}
		if n, ok := strings.CutPrefix(extra, "shards = "); ok && strconv.Itoa(j.Shards) != n {
			t.Errorf("%s: shards %d", extra, j.Shards)
		}
		hashes[extra] = j.Hash
	}
	if hashes[""] != hashes["broadcast = false"] {
		t.Error("broadcast = false changed the job's hash")
	}
	for _, a := range []string{"broadcast = true", "shards = 2", "shards = 3"} {
		for _, b := range []string{"", "broadcast = true", "shards = 2", "shards = 3"} {
			if a != b && hashes[a] == hashes[b] {
				t.Errorf("%q and %q have one hash", a, b)
			}
		}
	}
}
