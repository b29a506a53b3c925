package httphandler_test

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cronfleet/cronfleet/internal/fleettest"
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
	plugin := filepath.Join(dir, "http")
	if out, err := exec.Command("go", "build", "-o", plugin, "../../../cmd/plugins/http").CombinedOutput(); err != nil {
		t.Fatalf("go build http plugin: %v\n%s", err, out)
	}
	fleettest.CheckPlugin(t, "-settings", `{"url":"`+srv.URL+`/ok"}`, "-long-settings", `{"url":"`+srv.URL+`/slow"}`, plugin)
}
