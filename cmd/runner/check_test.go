package main_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginCheck runs "runner plugin check" against the built-ins and
// against broken plugins.
func TestPluginCheck(t *testing.T) {
	t.Parallel()
	bin := buildRunner(t)
	dir := t.TempDir()
	script := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+text+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	testPlugin := filepath.Join(dir, "testplugin")
	buildPlugin(t, "./internal/pluginhost/testdata/testplugin", testPlugin)
	earlyPlugin := filepath.Join(dir, "earlyplugin")
	buildPlugin(t, "./cmd/runner/testdata/earlyplugin", earlyPlugin)

	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		want     []string // lines, or prefixes of lines, in order
	}{
		{
			name: "exec", wantCode: 0,
			args: []string{"-settings", `{"command":["echo","hi"]}`, "-long-settings", `{"command":["sleep","60"]}`, "exec"},
			want: []string{"PASS handshake", "PASS schema: 5 attributes (command list(string), shell string,", `PASS run: "exit code 0", 1 output lines`, "PASS start: returned", "PASS cancel: returned", "PASS timeout: returned"},
		},
		{
			name: "exec synthesized settings", wantCode: 0, args: []string{"exec"},
			want: []string{"PASS handshake", "PASS schema", "PASS run: the handler answered with an error for the synthesized settings {}", "PASS start: returned", "PASS cancel: trivially", "PASS timeout: trivially"},
		},
		{
			name: "noop", wantCode: 0, args: []string{"noop"},
			want: []string{"PASS handshake", "PASS schema: 0 attributes", `PASS run: "", 0 output lines`, "PASS start", "PASS cancel", "PASS timeout"},
		},
		{
			name: "sdk plugin binary", wantCode: 0,
			args: []string{"-settings", `{"mode":"ok"}`, "-long-settings", `{"mode":"block"}`, testPlugin},
			want: []string{"PASS handshake", "PASS schema: 1 attributes (mode string (required))", `PASS run: "ok"`, "PASS start", "PASS cancel: returned", "PASS timeout: returned"},
		},
		{
			name: "ignores its start", wantCode: 1, args: []string{earlyPlugin},
			want: []string{"PASS handshake", "PASS schema", `PASS run: "ran at once"`, "FAIL start: the run returned", "PASS cancel: trivially", "PASS timeout: trivially"},
		},
		{
			name: "not a plugin", wantCode: 1, args: []string{script("hello", "echo hello")},
			want: []string{"FAIL handshake: pluginhost: plugin failed: plugin: start: Unrecognized remote plugin message: hello", "FAIL schema: skipped: no handshake", "FAIL run: skipped", "FAIL start: skipped", "FAIL cancel: skipped", "FAIL timeout: skipped"},
		},
		{
			name: "old protocol", wantCode: 1, args: []string{script("old", "echo '1|2|unix|/nonexistent.sock|grpc|'; exec sleep 60")},
			want: []string{"FAIL handshake: pluginhost: plugin failed: plugin: start: plugin speaks cronfleet plugin protocol version 2, this runner speaks version 3: rebuild the plugin against a plugin/sdk of protocol version 3"},
		},
		{
			name: "crashes mid-run", wantCode: 1, args: []string{"-settings", `{"mode":"exit"}`, testPlugin},
			want: []string{"PASS handshake", "PASS schema", "FAIL run: pluginhost: plugin failed: plugin:", "FAIL start: skipped: no successful run", "FAIL cancel: skipped: no successful run", "FAIL timeout: skipped"},
		},
		{
			name: "settings not of the schema", wantCode: 1, args: []string{"-settings", `{"mode":1}`, testPlugin},
			want: []string{"PASS handshake", "PASS schema", `FAIL run: settings {"mode":1} do not match the schema: sdk: settings: attribute "mode": 1 is not a string`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(bin, append([]string{"plugin", "check"}, tc.args...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("exit status %d, want %d", code, tc.wantCode)
			}
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(lines) != 6 {
				t.Errorf("%d lines, want one per check (6)", len(lines))
			}
			for i, w := range tc.want {
				if i >= len(lines) || !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d: want prefix %q", i+1, w)
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr.String())
			}
		})
	}

	out, err := exec.Command(bin, "plugin", "check", "kafka").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `"kafka" is neither a file nor a built-in plugin`) {
		t.Errorf("unknown target: %v\n%s", err, out)
	}
}
