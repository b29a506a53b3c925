package fleettest

import (
	"os/exec"
	"strings"
	"testing"
)

// CheckPlugin builds the runner and runs `runner plugin check ARGS…` (flags, then the
// plugin), and fails t unless every check passed and cancellation was really exercised (a
// plugin whose run ends before it is cancelled passes the cancel checks only "trivially").
// It returns the check's output.
func CheckPlugin(t testing.TB, args ...string) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	runner, err := BuildRunner(root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), runner, append([]string{"plugin", "check"}, args...)...).CombinedOutput()
	t.Logf("runner plugin check:\n%s", out)
	if err != nil {
		t.Fatalf("runner plugin check: %v", err)
	}
	for _, check := range []string{"handshake", "schema", "run", "start", "cancel", "timeout"} {
		if !strings.Contains(string(out), "PASS "+check) {
			t.Errorf("no PASS line for %s", check)
		}
	}
	if strings.Contains(string(out), "trivially") {
		t.Error("cancellation was not exercised")
	}
	return string(out)
}
