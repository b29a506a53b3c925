package config

import (
	"fmt"
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

// TestConstraints: constraint blocks decode with their three operators, all must hold for
// a node to run the job, they change the job's hash, and a mistake is located.
func TestConstraints(t *testing.T) {
	const job = `job "j" {
  schedule = "@daily"
  EXTRA
  handler "exec" {
    command = ["true"]
  }
}
`
	src := strings.Replace(job, "EXTRA", `constraint {
    label = "region"
    value = "eu"
  }
  constraint {
    label    = "tier"
    operator = "in"
    value    = ["gold", "silver"]
  }
  constraint {
    label    = "node"
    operator = "!="
    value    = "n3"
  }`, 1)
	cfg, _, diags := Parse("j.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	j := cfg.Jobs[0]
	if got, want := j.Placement(), "region = eu and tier in [gold, silver] and node != n3"; got != want {
		t.Errorf("placement %q, want %q", got, want)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"node": "n1", "region": "eu", "tier": "gold"}, true},
		{map[string]string{"node": "n1", "region": "eu", "tier": "silver"}, true},
		{map[string]string{"node": "n3", "region": "eu", "tier": "gold"}, false},
		{map[string]string{"node": "n1", "region": "us", "tier": "gold"}, false},
		{map[string]string{"node": "n1", "region": "eu", "tier": "bronze"}, false},
		{map[string]string{"node": "n1", "region": "eu"}, false},
		{map[string]string{"region": "eu", "tier": "gold"}, true}, // != holds for a node without the label
	} {
		if got := j.Allows(tc.labels); got != tc.want {
			t.Errorf("Allows(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
	plain, _, diags := Parse("j.hcl", []byte(strings.Replace(job, "EXTRA", "", 1)))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if plain.Jobs[0].Hash == j.Hash || !plain.Jobs[0].Allows(map[string]string{"node": "x"}) {
		t.Error("a job without constraints: same hash as with, or not allowed anywhere")
	}
	for name, tc := range map[string]struct{ block, want string }{
		"unknown operator": {`constraint {
    label    = "region"
    operator = "~"
    value    = "eu"
  }`, `j.hcl:5,16-19: Unknown operator; "~" is not a constraint operator`},
		"in with a string": {`constraint {
    label    = "region"
    operator = "in"
    value    = "eu"
  }`, `j.hcl:6,16-20: Incorrect attribute value type`},
		"in with none": {`constraint {
    label    = "region"
    operator = "in"
    value    = []
  }`, `j.hcl:6,16-18: Empty value list`},
		"bad label": {`constraint {
    label = "re gion"
    value = "eu"
  }`, `j.hcl:4,13-22: Invalid label; The label "re gion" is not a node label`},
		"no value": {`constraint {
    label = "region"
  }`, `Missing required argument; The argument "value" is required`},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, diags := Parse("j.hcl", []byte(strings.Replace(job, "EXTRA", tc.block, 1)))
			if !strings.Contains(diags.Error(), tc.want) {
				t.Errorf("diagnostics %q, want one containing %q", diags.Error(), tc.want)
			}
		})
	}
}

// TestParseLabels: -label flags become a node's labels with its name built in, and a
// malformed one is an error naming it.
func TestParseLabels(t *testing.T) {
	got, err := ParseLabels("n1", []string{"region=eu", "gpu=true", "topology.kubernetes.io/zone=a=b"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"node": "n1", "region": "eu", "gpu": "true", "topology.kubernetes.io/zone": "a=b"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("labels %v, want %v", got, want)
	}
	for _, bad := range []string{"region", "=eu", "region=", "node=x", "re gion=eu", "region=e u"} {
		if _, err := ParseLabels("n1", []string{bad}); err == nil || !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("label %q: error %v, want one naming it", bad, err)
		}
	}
	if _, err := ParseLabels("n1", []string{"a=1", "a=2"}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a label given twice: error %v", err)
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
