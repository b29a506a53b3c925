package httphandler_test

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginCheck builds the http plugin binary and runs the conformance
// check, "runner plugin check", on it against a loopback server; the
// cancel and timeout checks use a request the server never answers.
func TestPluginCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	bins := map[string]string{"runner": "../../../cmd/runner", "http": "../../../cmd/plugins/http"}
	for name, pkg := range bins {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	out, err := exec.CommandContext(t.Context(), filepath.Join(dir, "runner"), "plugin", "check",
		"-settings", `{"url":"`+srv.URL+`/ok"}`, "-long-settings", `{"url":"`+srv.URL+`/slow"}`,
		filepath.Join(dir, "http")).CombinedOutput()
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
