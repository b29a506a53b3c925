package pythonplugin_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginCheck runs the conformance check, "runner plugin check", on
// echo-python: handshake, schema, a run, cancellation and timeout (with a
// run that would sleep a minute, so both are tested for real).
func TestPluginCheck(t *testing.T) {
	requirePython(t)
	runner := filepath.Join(t.TempDir(), "runner")
	if out, err := exec.Command("go", "build", "-o", runner, "../../../cmd/runner").CombinedOutput(); err != nil {
		t.Fatalf("go build runner: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(t.Context(), runner, "plugin", "check",
		"-settings", `{"message":"hi"}`, "-long-settings", `{"sleep":60}`, "./echo-python")
	out, err := cmd.CombinedOutput()
	t.Logf("runner plugin check:\n%s", out)
	if err != nil {
		t.Fatalf("runner plugin check: %v", err)
	}
	for _, check := range []string{"handshake", "schema", "run", "cancel", "timeout"} {
		if !strings.Contains(string(out), "PASS "+check) {
			t.Errorf("no PASS line for %s", check)
		}
	}
	if strings.Contains(string(out), "trivially") {
		t.Error("cancellation was not exercised")
	}
}
