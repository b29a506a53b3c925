package pluginhost

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/testwait"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// helperEnv makes the test binary act as a tiny runner; see TestMain.
const helperEnv = "PLUGINHOST_TEST_RUNNER"

func TestMain(m *testing.M) {
	if argv := os.Getenv(helperEnv); argv != "" {
		os.Exit(helperRunner(argv))
	}
	os.Exit(m.Run())
}

// helperRunner runs one exec job through a Host and prints its output
// lines to stdout; the test SIGKILLs it mid-run.
func helperRunner(execBin string) int {
	h := New(Config{Builtins: map[string][]string{"exec": {execBin}}})
	_, err := h.Run(context.Background(), "exec", &sdk.Run{
		Job:      "orphan",
		Settings: []byte(`{"command":["sh","-c","echo $PPID; echo $$; sleep 300 & echo $!; sleep 300"]}`),
	}, func(line string) { fmt.Println(line) })
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// build compiles a package of this module into dir and returns the binary.
func build(t testing.TB, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// newHost builds the exec and test plugins and returns a host running them,
// closed at the end of the test.
func newHost(t *testing.T) *Host {
	t.Helper()
	dir := t.TempDir()
	h := New(Config{
		Builtins: map[string][]string{
			"exec": {build(t, dir, "../../cmd/plugins/exec")},
			"test": {build(t, dir, "./testdata/testplugin")},
		},
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RestartBackoff: 10 * time.Millisecond,
		KillTimeout:    8 * time.Second,
	})
	t.Cleanup(func() { _ = h.Close() })
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// lines collects output lines and lets a test wait for them.
type lines struct {
	mu  sync.Mutex
	got []string
	ch  chan struct{}
}

func newLines() *lines { return &lines{ch: make(chan struct{}, 1000)} }

func (l *lines) add(s string) {
	l.mu.Lock()
	l.got = append(l.got, s)
	l.mu.Unlock()
	l.ch <- struct{}{}
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// waitN waits for n lines and returns them.
func (l *lines) waitN(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for len(l.all()) < n {
		select {
		case <-l.ch:
		case <-deadline:
			t.Fatalf("got output %q, want %d lines", l.all(), n)
		}
	}
	return l.all()
}

func settings(s string) []byte { return []byte(s) }

func TestExecRun(t *testing.T) {
	t.Setenv("CRONFLEET_TEST_SECRET", "must-not-leak")
	h := newHost(t)
	out := newLines()
	run := &sdk.Run{
		Job:          "backup",
		ScheduledAt:  time.Date(2026, 11, 26, 15, 4, 5, 0, time.UTC),
		Attempt:      2,
		FencingToken: 77,
		OccurrenceID: "backup@2026-11-26T15:04:05Z",
		Node:         "node-a",
		Settings:     settings(`{"command":["sh","-c","env | sort; echo tail"],"env":{"GREETING":"hi"}}`),
	}
	res, err := h.Run(t.Context(), "exec", run, out.add)
	if err != nil {
		t.Fatal(err)
	}
	got := out.all()
	for _, want := range []string{
		"CRONFLEET_JOB=backup",
		"CRONFLEET_SCHEDULED_AT=2026-11-26T15:04:05.000Z",
		"CRONFLEET_ATTEMPT=2",
		"CRONFLEET_FENCING_TOKEN=77",
		"CRONFLEET_OCCURRENCE_ID=backup@2026-11-26T15:04:05Z",
		"CRONFLEET_NODE=node-a",
		"GREETING=hi",
		"tail",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("output %q lacks %q", got, want)
		}
	}
	for _, l := range got {
		if strings.Contains(l, "CRONFLEET_TEST_SECRET") || strings.Contains(l, "MAGIC_COOKIE") {
			t.Errorf("job saw %q", l)
		}
	}
	if res.Metadata["exit_code"] != "0" || !strings.HasSuffix(res.Output, "tail\n") {
		t.Errorf("result = %+v", res)
	}

	res, err = h.Run(t.Context(), "exec", &sdk.Run{Settings: settings(`{"command":["sh","-c","echo oops; exit 3"]}`)}, nil)
	if err == nil || !strings.Contains(err.Error(), "exited with code 3") || errors.Is(err, ErrPluginFailed) {
		t.Errorf("err = %v, want a handler error naming exit code 3", err)
	}
	if res == nil || res.Metadata["exit_code"] != "3" || res.Output != "oops\n" {
		t.Errorf("result = %+v", res)
	}

	_, err = h.Run(t.Context(), "exec", &sdk.Run{Settings: settings(`{"comand":["true"]}`)}, nil)
	if err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("misspelt setting: err = %v", err)
	}
}

// TestJobSIGPIPEDefault: plugin/sdk asks for SIGPIPE so that a dead
// runner's stderr pipe cannot kill a plugin; jobs must still get the default
// action (a pipeline such as "yes | head" relies on it), which signal.Ignore
// in the plugin would have passed on to them.
func TestJobSIGPIPEDefault(t *testing.T) {
	h := newHost(t)
	out := newLines()
	if _, err := h.Run(t.Context(), "exec", &sdk.Run{Settings: settings(`{"command":["grep","SigIgn","/proc/self/status"]}`)}, out.add); err != nil {
		t.Fatal(err)
	}
	got := out.all()
	if len(got) != 1 {
		t.Fatalf("output %q, want one SigIgn line", got)
	}
	mask, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(got[0], "SigIgn:")), 16, 64)
	if err != nil {
		t.Fatalf("output %q: %v", got, err)
	}
	if mask&(1<<(syscall.SIGPIPE-1)) != 0 {
		t.Errorf("job runs with SIGPIPE ignored (SigIgn %#x)", mask)
	}
}

func TestPluginEnvNotInherited(t *testing.T) {
	t.Setenv("CRONFLEET_TEST_SECRET", "must-not-leak")
	h := newHost(t)
	out := newLines()
	if _, err := h.Run(t.Context(), "test", &sdk.Run{Settings: settings(`{"mode":"env"}`)}, out.add); err != nil {
		t.Fatal(err)
	}
	env := out.all()
	if !slices.Contains(env, "PATH="+os.Getenv("PATH")) {
		t.Errorf("plugin env %q lacks PATH", env)
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "CRONFLEET_TEST_SECRET=") || strings.HasPrefix(kv, "HOME=") {
			t.Errorf("plugin inherited %q", kv)
		}
	}
}

func TestCrashFailsRunAndRestarts(t *testing.T) {
	for _, mode := range []string{"exit", "panic"} {
		t.Run(mode, func(t *testing.T) {
			h := newHost(t)
			counted := &restarts{}
			h.cfg.Metrics = counted // before any run: nothing reads it yet
			ok := func() string {
				t.Helper()
				res, err := h.Run(t.Context(), "test", &sdk.Run{Settings: settings(`{"mode":"ok"}`)}, nil)
				if err != nil || res.Message != "ok" {
					t.Fatalf("ok run: %+v, %v", res, err)
				}
				return res.Metadata["pid"]
			}
			first := ok()

			out := newLines()
			_, err := h.Run(t.Context(), "test", &sdk.Run{Settings: settings(`{"mode":"` + mode + `"}`)}, out.add)
			if !errors.Is(err, ErrPluginFailed) {
				t.Fatalf("crashing run: err = %v, want ErrPluginFailed", err)
			}
			t.Logf("crashing run: %v", err)

			second := ok()
			if first == second {
				t.Errorf("plugin pid %s after the crash, want a new process", second)
			}
			if n := counted.of("test"); n != 1 {
				t.Errorf("restarts counted: %d, want 1", n)
			}
			pid, _ := strconv.Atoi(first)
			waitGone(t, pid)
		})
	}
}

func TestCancelKillsProcessGroup(t *testing.T) {
	h := newHost(t)
	out := newLines()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.Run(ctx, "exec", &sdk.Run{
			Settings: settings(`{"command":["sh","-c","echo $$; sleep 300 & echo $!; sleep 300"]}`),
		}, out.add)
		errc <- err
	}()
	pids := atoi(t, out.waitN(t, 2))
	for _, pid := range pids {
		if !fleettest.Alive(pid) {
			t.Fatalf("pid %d not running before cancel", pid)
		}
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	waitGone(t, pids...)
	waitGroupGone(t, pids[0])
}

func TestCloseLeavesNothing(t *testing.T) {
	h := newHost(t)
	out := newLines()
	errc := make(chan error, 2)
	go func() {
		_, err := h.Run(t.Context(), "exec", &sdk.Run{
			Settings: settings(`{"command":["sh","-c","echo $PPID; echo $$; sleep 300 & echo $!; sleep 300"]}`),
		}, out.add)
		errc <- err
	}()
	pids := atoi(t, out.waitN(t, 3)) // plugin, sh, background sleep

	res, err := h.Run(t.Context(), "test", &sdk.Run{Settings: settings(`{"mode":"ok"}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testPID, _ := strconv.Atoi(res.Metadata["pid"])

	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Error("run in flight during Close succeeded")
	}
	waitGone(t, append(pids, testPID)...)
	waitGroupGone(t, pids[1])
	if _, err := h.Run(t.Context(), "test", &sdk.Run{}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: err = %v, want ErrClosed", err)
	}
}

// TestRunnerKilled SIGKILLs a runner in the middle of an exec run: the
// plugin (Pdeathsig, then its own clean-up) must take the job's whole
// process group with it. Whether the runner's end of the plugin's stderr
// pipe is already closed when the plugin logs its shutdown is a race; see
// plugin/sdk's TestServeSurvivesClosedStderr for that case made certain.
func TestRunnerKilled(t *testing.T) {
	execBin := build(t, t.TempDir(), "../../cmd/plugins/exec")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+execBin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	out := newLines()
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.add(sc.Text())
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	pids := atoi(t, out.waitN(t, 3)) // plugin, sh, background sleep
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitGone(t, pids...)
	waitGroupGone(t, pids[1])
}

func TestHas(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := New(Config{Dir: dir, Builtins: map[string][]string{"exec": {"/bin/true"}}})
	defer h.Close()
	for name, want := range map[string]bool{
		"exec": true, "tool": true, "notes": false, "sub": false, "missing": false,
		"": false, "../" + filepath.Base(dir) + "/tool": false, ".": false,
	} {
		if got := h.Has(name); got != want {
			t.Errorf("Has(%q) = %v, want %v", name, got, want)
		}
	}
	if _, err := h.Run(t.Context(), "missing", &sdk.Run{}, nil); !errors.Is(err, ErrUnknownPlugin) {
		t.Errorf("Run(missing): err = %v, want ErrUnknownPlugin", err)
	}
}

func atoi(t *testing.T, ss []string) []int {
	t.Helper()
	var out []int
	for _, s := range ss {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("not a pid: %q", s)
		}
		out = append(out, n)
	}
	return out
}

// waitGone waits until none of pids is alive.
func waitGone(t *testing.T, pids ...int) {
	t.Helper()
	testwait.For(t, 30*time.Second, fmt.Sprintf("processes %v to end", pids), func() bool {
		return !slices.ContainsFunc(pids, fleettest.Alive)
	})
}

// waitGroupGone waits until no live process is left in process group pgid.
func waitGroupGone(t *testing.T, pgid int) {
	t.Helper()
	testwait.For(t, 30*time.Second, fmt.Sprintf("process group %d to end", pgid), func() bool {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if g, err := syscall.Getpgid(pid); err == nil && g == pgid && fleettest.Alive(pid) {
				return false
			}
		}
		return true
	})
}

// recorder is a slog handler that hands records to a test.
type recorder struct {
	attrs []slog.Attr
	ch    chan slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(r.attrs...)
	select {
	case r.ch <- rec:
	default: // a test reads only what it waits for
	}
	return nil
}
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{attrs: append(slices.Clone(r.attrs), as...), ch: r.ch}
}
func (r *recorder) WithGroup(string) slog.Handler { return r }

func TestPluginLogsReachHost(t *testing.T) {
	rec := &recorder{ch: make(chan slog.Record, 1000)}
	h := New(Config{
		Builtins: map[string][]string{"test": {build(t, t.TempDir(), "./testdata/testplugin")}},
		Logger:   slog.New(rec),
	})
	t.Cleanup(func() { _ = h.Close() })
	if _, err := h.Run(t.Context(), "test", &sdk.Run{Job: "logger", Settings: settings(`{"mode":"log"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case r := <-rec.ch:
			if r.Message != "hello from the plugin" {
				continue
			}
			got := map[string]string{}
			r.Attrs(func(a slog.Attr) bool {
				got[a.Key] = a.Value.String()
				return true
			})
			if r.Level != slog.LevelInfo || got["plugin"] != "test" || got["job"] != "logger" || got["answer"] != "42" {
				t.Errorf("record %v %q %v", r.Level, r.Message, got)
			}
			return
		case <-deadline:
			t.Fatal("the plugin's log record never arrived")
		}
	}
}
