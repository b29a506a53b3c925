package pythonplugin_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/lease"
	"github.com/cronfleet/cronfleet/internal/pluginhost"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// python is the interpreter the launcher runs.
const python = "/usr/bin/python3"

// requirePython skips the test when python3 or its gRPC modules are
// missing, unless CI is running, where the plugin must be tested.
func requirePython(t *testing.T) {
	t.Helper()
	out, err := exec.Command(python, "-c", "import grpc, google.protobuf").CombinedOutput()
	if err == nil {
		return
	}
	msg := "echo-python needs " + python + " with the grpc and protobuf modules " +
		"(Debian: apt-get install python3-grpcio python3-protobuf): " + strings.TrimSpace(err.Error()+" "+string(out))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// newHost returns a plugin host whose plugin directory holds echo-python.
func newHost(t *testing.T) *pluginhost.Host {
	t.Helper()
	requirePython(t)
	launcher, err := filepath.Abs("echo-python")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(launcher, filepath.Join(dir, "echo-python")); err != nil {
		t.Fatal(err)
	}
	h := pluginhost.New(pluginhost.Config{
		Dir:         dir,
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		KillTimeout: 5 * time.Second,
	})
	t.Cleanup(func() { _ = h.Close() })
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func occurrence(settings string) *sdk.Run {
	return &sdk.Run{
		Job:          "report",
		ScheduledAt:  time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC),
		Attempt:      2,
		FencingToken: 17,
		OccurrenceID: "report@1795662000",
		Node:         "n1",
		Settings:     []byte(settings),
	}
}

func TestEcho(t *testing.T) {
	h := newHost(t)
	var lines []string
	res, err := h.Run(t.Context(), "echo-python", occurrence(`{"message":"hi","sleep":null}`), func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"job=report",
		"scheduled_at=2026-11-26T03:00:00Z",
		"attempt=2",
		"fencing_token=17",
		"occurrence_id=report@1795662000",
		"node=n1",
		`settings={"message": "hi"}`,
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if res.Message != "echoed" || res.Metadata["language"] != "python" {
		t.Errorf("result %+v, want message echoed and language python", res)
	}
}

// TestSessionRunsConcurrentlyFromTheirStart sends runs ahead of their start: the plugin
// takes them all on its one session at once and calls none before its start.
func TestSessionRunsConcurrentlyFromTheirStart(t *testing.T) {
	h := newHost(t)
	if _, err := h.Run(t.Context(), "echo-python", occurrence(`{}`), nil); err != nil {
		t.Fatal(err) // started, so that the start below measures runs only
	}
	const n = 8
	startAt := time.Now().Add(500 * time.Millisecond)
	type span struct{ start, end time.Time }
	spans := make([]span, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := h.RunAt(t.Context(), "echo-python", occurrence(`{"sleep":0.5}`), startAt, nil)
			if err != nil {
				t.Errorf("run %d: %v", i, err)
				return
			}
			spans[i] = span{unixNano(t, res.Metadata["started_at_unix_nano"]), unixNano(t, res.Metadata["ended_at_unix_nano"])}
		})
	}
	wg.Wait()
	for i, s := range spans {
		if s.start.Before(startAt) {
			t.Errorf("run %d started %s before its start_at", i, startAt.Sub(s.start))
		}
		for j, o := range spans {
			if !s.start.Before(o.end) {
				t.Errorf("run %d started after run %d ended: the session ran them one after the other", i, j)
			}
		}
	}
}

func unixNano(t *testing.T, s string) time.Time {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("unix nanoseconds %q: %v", s, err)
	}
	return time.Unix(0, n)
}

func TestFailures(t *testing.T) {
	h := newHost(t)
	for _, tc := range []struct {
		settings, wantErr string
		permanent         bool
	}{
		{`{"fail":"disk full"}`, "echo-python: disk full", false},
		{`{"mesage":"typo"}`, "unknown attribute 'mesage'", true},
		{`[1]`, "not a JSON object", true},
	} {
		_, err := h.Run(t.Context(), "echo-python", occurrence(tc.settings), nil)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, pluginhost.ErrPluginFailed) {
			t.Errorf("settings %s: err = %v, want a handler error containing %q", tc.settings, err, tc.wantErr)
		}
		if got := sdk.IsPermanent(err); got != tc.permanent {
			t.Errorf("settings %s: permanent = %v, want %v", tc.settings, got, tc.permanent)
		}
	}
}

// TestCancel cancels a run that would sleep for minutes once it has
// started; the plugin must end it and go on serving.
func TestCancel(t *testing.T) {
	h := newHost(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	start := time.Now()
	_, err := h.Run(ctx, "echo-python", occurrence(`{"sleep":300}`), func(l string) {
		if strings.HasPrefix(l, "settings=") {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want the cancellation", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("cancelled run took %s", d)
	}
	if _, err := h.Run(t.Context(), "echo-python", occurrence(`{}`), nil); err != nil {
		t.Errorf("run after a cancelled one: %v", err)
	}
}

// unreachable is a lease.Renewer whose Redis never answers.
type unreachable struct{}

func (unreachable) Renew(context.Context, []lease.Lease) ([]lease.Verdict, error) {
	return nil, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
}

// TestFence: the plugin stops a run at its fence by itself, as a runner that is frozen
// needs it to, and not before.
func TestFence(t *testing.T) {
	h := newHost(t)
	const leaseTTL = 3 * time.Second
	k := lease.New(unreachable{}, lease.Config{Lease: leaseTTL})
	runCtx, release := k.Hold(t.Context(), lease.Lease{Occurrence: "report@1795662000", Token: 17}, time.Now(), time.Hour, time.Time{})
	defer release()
	fence, _ := lease.FenceOf(runCtx)
	// A frozen runner: its own cancellation never reaches the plugin.
	_, err := h.Run(context.WithoutCancel(runCtx), "echo-python", occurrence(`{"sleep":300}`), nil)
	ended := time.Now()
	if err == nil || !strings.Contains(err.Error(), "echo-python: cancelled") {
		t.Errorf("err = %v, want the run cancelled by the plugin", err)
	}
	if ended.Before(fence.At()) {
		t.Errorf("run ended %v before its fence", fence.At().Sub(ended))
	}
	if expiry := fence.At().Add(leaseTTL / 5); !ended.Before(expiry) {
		t.Errorf("run ended %v after its lease expired", ended.Sub(expiry))
	}
}
