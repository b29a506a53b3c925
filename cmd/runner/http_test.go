package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/redistest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// TestHTTPOffLoopbackNeedsTokens: a node asked to serve HTTP on every interface refuses to
// start without tokens, and without TLS or -http-insecure; with them, a request without a
// token is refused, the read role reads but cannot trigger, and the operate role triggers
// under its name. Tokens come from a file or from the environment. (The test binds every
// interface but sends its requests to loopback only.)
func TestHTTPOffLoopbackNeedsTokens(t *testing.T) {
	t.Parallel()
	f := newFleet(t, dashboardJobs)
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	bind := fmt.Sprintf("0.0.0.0:%d", port)
	tokens := filepath.Join(f.dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# who may look, who may act\nread grafana read-secret-0123456789\noperate alice operate-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-http", bind}, "give bearer tokens"},
		{[]string{"-http", bind, "-http-tokens", tokens}, "-http-insecure"},
	} {
		cmd := exec.Command(f.bin, append([]string{"run", "-config", f.conf, "-redis", f.url}, c.args...)...)
		cmd.Env = append(os.Environ(), "CRONFLEET_HTTP_TOKENS=")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("runner run %v: %v\n%s\nwant a refusal saying %q", c.args, err, out, c.want)
		}
		if strings.Contains(string(out), "secret-0123456789") {
			t.Errorf("the refusal shows a secret:\n%s", out)
		}
	}

	f.start("node-a", "-http", bind, "-http-tokens", tokens, "-http-insecure")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testwait.For(t, 10*time.Second, "the node to serve HTTP", func() bool {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == 200
	})
	call := func(method, path, token string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	for _, c := range []struct {
		method, path, token string
		code                int
	}{
		{"GET", "/v1/jobs", "", 401},
		{"GET", "/metrics", "", 401},
		{"GET", "/v1/jobs", "not-a-token-0123456789", 401},
		{"GET", "/v1/jobs", "read-secret-0123456789", 200},
		{"POST", "/v1/jobs/on-demand/trigger", "", 401},
		{"POST", "/v1/jobs/on-demand/trigger", "read-secret-0123456789", 403},
		{"POST", "/v1/jobs/on-demand/trigger", "operate-secret-0123456789", 202},
	} {
		if code, m := call(c.method, c.path, c.token); code != c.code {
			t.Errorf("%s %s with %q: %d %v, want %d", c.method, c.path, c.token, code, m, c.code)
		}
	}
	testwait.For(t, 20*time.Second, "the one trigger to run", func() bool {
		h := f.history("e2e", "on-demand")
		return len(h) == 1 && h[0].Status == "succeeded"
	})
	_, m := call("GET", "/v1/audit", "read-secret-0123456789")
	entries, _ := m["entries"].([]any)
	if len(entries) != 1 || !strings.HasPrefix(entries[0].(map[string]any)["by"].(string), "alice (127.0.0.1)") {
		t.Errorf("audit log %v, want alice's one trigger", m)
	}

	// Tokens from the environment, on a second node.
	port2, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	n, err := fleettest.StartNode(fleettest.NodeConfig{Bin: f.bin, Name: "node-b", Configs: []string{f.conf}, RedisURL: f.url,
		LogPath: filepath.Join(f.dir, "node-b.log"), Args: []string{"-http", fmt.Sprintf("0.0.0.0:%d", port2), "-http-insecure"},
		Env: []string{"CRONFLEET_HTTP_TOKENS=read env-reader env-secret-0123456789"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(10 * time.Second) })
	base = fmt.Sprintf("http://127.0.0.1:%d", port2)
	testwait.For(t, 20*time.Second, "node-b to serve HTTP", func() bool {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == 200
	})
	if code, _ := call("GET", "/v1/nodes", "env-secret-0123456789"); code != 200 {
		t.Errorf("the environment's token: %d", code)
	}
	if code, _ := call("GET", "/v1/nodes", ""); code != 401 {
		t.Errorf("no token on node-b: %d", code)
	}
	if strings.Contains(n.Log(), "secret-0123456789") {
		t.Errorf("node-b's log shows a secret")
	}
}
