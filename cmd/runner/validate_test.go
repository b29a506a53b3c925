package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

func TestValidateReportsLocatedDiagnostics(t *testing.T) {
	t.Parallel()
	bin := buildRunner(t)
	tests := []struct {
		file string
		want []string // each must appear in the output
	}{
		{"syntax.hcl", []string{"syntax.hcl:1:9: error: Unclosed configuration block"}},
		{"unknown_attribute.hcl", []string{"unknown_attribute.hcl:3:3: error: Unsupported argument", `"retries"`}},
		{"bad_cron.hcl", []string{"bad_cron.hcl:2:14: error: Invalid schedule", "never matches"}},
		{"unknown_zone.hcl", []string{"unknown_zone.hcl:3:14: error: Unknown time zone", "Europe/Atlantis"}},
		{"duplicate_job.hcl", []string{"duplicate_job.hcl:8:1: error: Duplicate job", "duplicate_job.hcl:1,1"}},
		{"unknown_plugin.hcl", []string{"unknown_plugin.hcl:3:11: error: Unknown plugin", `"kafka"`}},
		{"exec_wrong_type.hcl", []string{"exec_wrong_type.hcl:4:15: error: Incorrect attribute value type", "list of string required"}},
		{"after_cycle.hcl", []string{"after_cycle.hcl:13:3: error: Dependency cycle", `in job "load"`, "extract → load → report → extract"}},
		{"exec_misspelled.hcl", []string{"exec_misspelled.hcl:4:5: error: Unsupported argument", `Did you mean "command"?`}},
		// Found by the plugins' own checks, beyond their schemas.
		{"exec_no_command.hcl", []string{"exec_no_command.hcl:3:3: error: Invalid handler setting", "one of command and shell is required"}},
		{"http_settings.hcl", []string{
			"http_settings.hcl:3:18: error: Missing required argument", `"url"`,
			"http_settings.hcl:11:15: error: Invalid handler setting", `url: "ftp://example.invalid/hook": want an`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "invalid", tc.file)
			out, err := exec.Command(bin, "validate", path).CombinedOutput()
			var ee *exec.ExitError
			if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("runner validate %s: %v, want exit status 1\n%s", tc.file, err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("third-party plugin settings", func(t *testing.T) {
		// A plugin built the way a user would, dropped into a plugin directory: its schema
		// checks the handler blocks exactly like the built-ins' and the core attributes.
		dir := t.TempDir()
		buildPlugin(t, "./cmd/plugins/example-webhook", filepath.Join(dir, "webhook"))
		out, err := exec.Command(bin, "validate", "-plugin-dir", dir, filepath.Join("testdata", "invalid", "webhook_settings.hcl")).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("runner validate: %v, want exit status 1\n%s", err, out)
		}
		for _, w := range []string{
			"webhook_settings.hcl:4:11: error: Incorrect attribute value type",
			"webhook_settings.hcl:10:21: error: Missing required argument",
			"webhook_settings.hcl:18:5: error: Unsupported argument",
			// The plugin's own Check, beyond its schema.
			"webhook_settings.hcl:25:11: error: Invalid handler setting",
		} {
			if !strings.Contains(string(out), w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	})
	t.Run("valid", func(t *testing.T) {
		out, err := exec.Command(bin, "validate", filepath.Join("..", "..", "jobs.example.hcl")).CombinedOutput()
		if err != nil {
			t.Fatalf("runner validate jobs.example.hcl: %v\n%s", err, out)
		}
	})
}

// TestQuickStartRunsTheExample runs the README's first command: the example job file on the
// embedded store, until a job has fired, then stops it with SIGINT.
func TestQuickStartRunsTheExample(t *testing.T) {
	t.Parallel()
	bin := buildRunner(t)
	dir := t.TempDir()
	n, err := fleettestStart(bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "the heartbeat job to fire", func() bool {
		for l := range strings.Lines(n.Log()) {
			if strings.Contains(l, `msg="run ended"`) && strings.Contains(l, " job=heartbeat ") && strings.Contains(l, " status=succeeded") {
				return true
			}
		}
		return false
	})
	if !strings.Contains(n.Log(), "embedded in-memory store") {
		t.Errorf("the embedded mode is not announced:\n%s", n.Log())
	}
	if err := n.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := n.Wait(20 * time.Second); err != nil {
		t.Fatalf("runner after SIGINT: %v\n%s", err, n.Log())
	}
}

func fleettestStart(bin, dir string) (*fleettest.Node, error) {
	return fleettest.StartNode(fleettest.NodeConfig{
		Bin: bin, Name: "quickstart", Configs: []string{filepath.Join("..", "..", "jobs.example.hcl")},
		LogPath: filepath.Join(dir, "quickstart.log"),
	})
}

func TestPinnedPluginIsRefusedWhenItsBinaryChanges(t *testing.T) {
	t.Parallel()
	bin := buildRunner(t)
	dir := t.TempDir()
	plugin := filepath.Join(dir, "webhook")
	buildPlugin(t, "./cmd/plugins/example-webhook", plugin)
	data, err := os.ReadFile(plugin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	conf := filepath.Join(dir, "jobs.hcl")
	write := func(pin string) {
		src := fmt.Sprintf("plugin \"webhook\" {\n  path   = %q\n  sha256 = %q\n}\n\njob \"notify\" {\n  schedule = \"@hourly\"\n  handler \"webhook\" {\n    url = \"https://example.invalid/\"\n  }\n}\n", plugin, pin)
		if err := os.WriteFile(conf, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(hex.EncodeToString(sum[:]))
	if out, err := exec.Command(bin, "validate", conf).CombinedOutput(); err != nil {
		t.Fatalf("validate with the right pin: %v\n%s", err, out)
	}
	// Someone replaces the binary: the pin no longer matches.
	if err := os.WriteFile(plugin, append(data, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "validate", conf).CombinedOutput()
	if err == nil {
		t.Fatalf("validate accepted a changed pinned binary:\n%s", out)
	}
	for _, w := range []string{"jobs.hcl:8:11: error: Plugin schema unavailable", "refusing a changed binary", hex.EncodeToString(sum[:])} {
		if !strings.Contains(string(out), w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}
