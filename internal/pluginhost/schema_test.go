package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/pluginwire"
	"github.com/cronfleet/cronfleet/internal/testwait"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

func TestSchema(t *testing.T) {
	h := newHost(t)
	got, err := h.Schema(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	want := sdk.Schema{Attributes: []sdk.Attribute{{Name: "mode", Type: sdk.TypeString, Required: true, Description: "What the run does."}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema (-want +got):\n%s", diff)
	}
	got, err = h.Schema(t.Context(), "exec")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range got.Attributes {
		names = append(names, a.Name+":"+a.Type.String())
	}
	if diff := cmp.Diff([]string{"command:list(string)", "shell:string", "env:map(string)", "dir:string", "user:string"}, names); diff != "" {
		t.Errorf("exec schema (-want +got):\n%s", diff)
	}
	if _, err := h.Schema(t.Context(), "missing"); !errors.Is(err, ErrUnknownPlugin) {
		t.Errorf("Schema(missing): err = %v", err)
	}
}

func TestPermanentErrors(t *testing.T) {
	h := newHost(t)
	_, err := h.Run(t.Context(), "test", &sdk.Run{Settings: settings(`{"mode":"permanent"}`)}, nil)
	if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "never works") {
		t.Errorf("err = %v, want a permanent error", err)
	}
	_, err = h.Run(t.Context(), "exec", &sdk.Run{Settings: settings(`{"command":["true"],"shell":"true"}`)}, nil)
	if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "mutually exclusive") {
		t.Errorf("exec with command and shell: err = %v, want a permanent error", err)
	}
	_, err = h.Run(t.Context(), "exec", &sdk.Run{Settings: settings(`{"shell":"exit 2"}`)}, nil)
	if err == nil || sdk.IsPermanent(err) {
		t.Errorf("exit 2: err = %v, want a retryable error", err)
	}
}

// TestVersionMismatch: a plugin built for an older protocol (version 2, the one before
// Session became the only transport, or version 1) is refused with a message naming both
// versions.
func TestVersionMismatch(t *testing.T) {
	for _, old := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", old), func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "old")
			script := fmt.Sprintf("#!/bin/sh\necho '1|%d|unix|/nonexistent.sock|grpc|'\nexec sleep 60\n", old)
			if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			h := New(Config{Builtins: map[string][]string{"old": {bin}}, KillTimeout: time.Second})
			t.Cleanup(func() { _ = h.Close() })
			_, err := h.Run(t.Context(), "old", &sdk.Run{}, nil)
			var ve *pluginwire.VersionError
			if !errors.As(err, &ve) || !errors.Is(err, ErrPluginFailed) {
				t.Fatalf("err = %v, want ErrPluginFailed with a VersionError", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("protocol version %d,", old)) || !strings.Contains(msg, "speaks version 3") {
				t.Errorf("message %q does not name both versions", msg)
			}
		})
	}
}

func TestMaxConcurrent(t *testing.T) {
	dir := t.TempDir()
	h := New(Config{
		Builtins:      map[string][]string{"test": {build(t, dir, "./testdata/testplugin")}},
		MaxConcurrent: map[string]int{"test": 1},
	})
	t.Cleanup(func() { _ = h.Close() })

	out := newLines()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.Run(ctx, "test", &sdk.Run{Settings: settings(`{"mode":"block"}`)}, out.add)
		errc <- err
	}()
	out.waitN(t, 1) // the one slot is taken

	waiting, cancelWaiting := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancelWaiting()
	_, err := h.Run(waiting, "test", &sdk.Run{Settings: settings(`{"mode":"ok"}`)}, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "run slots") {
		t.Errorf("second run: err = %v, want it to time out waiting for a slot", err)
	}

	// A waiting run gets the slot as soon as it is free.
	second := make(chan error, 1)
	go func() {
		_, err := h.Run(t.Context(), "test", &sdk.Run{Settings: settings(`{"mode":"ok"}`)}, nil)
		second <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("first run: err = %v", err)
	}
	if err := <-second; err != nil {
		t.Errorf("waiting run: %v", err)
	}
}

// TestHungPluginRestarted SIGSTOPs a plugin: the next run fails its health
// check with a clear error, the process is stopped and a new one serves.
func TestHungPluginRestarted(t *testing.T) {
	dir := t.TempDir()
	h := New(Config{
		Builtins:       map[string][]string{"test": {build(t, dir, "./testdata/testplugin")}},
		RestartBackoff: 10 * time.Millisecond,
		HealthInterval: time.Nanosecond, // check before every call
		HealthTimeout:  300 * time.Millisecond,
		KillTimeout:    5 * time.Second,
	})
	t.Cleanup(func() { _ = h.Close() })
	pidOf := func() int {
		t.Helper()
		res, err := h.Run(t.Context(), "test", &sdk.Run{Settings: settings(`{"mode":"ok"}`)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(res.Metadata["pid"])
		return pid
	}
	first := pidOf()
	if err := syscall.Kill(first, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(first, syscall.SIGKILL) })
	waitStopped(t, first)

	_, err := h.Run(t.Context(), "test", &sdk.Run{Settings: settings(`{"mode":"ok"}`)}, nil)
	if !errors.Is(err, ErrPluginFailed) || !strings.Contains(err.Error(), "health check") {
		t.Fatalf("run on a stopped plugin: err = %v, want a failed health check", err)
	}
	t.Log(err)
	if second := pidOf(); second == first {
		t.Errorf("still served by the stopped process %d", first)
	}
	waitGone(t, first)
}

// waitStopped waits until a SIGSTOP sent to pid took effect, which it does when the
// process next enters the kernel.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	testwait.For(t, 30*time.Second, fmt.Sprintf("process %d to be stopped", pid), func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		i := bytes.LastIndexByte(b, ')')
		return i > 0 && i+2 < len(b) && b[i+2] == 'T'
	})
}

// cancelStuckRun starts a run whose handler ignores cancellation, cancels it once the
// handler runs (after calling before with the plugin process' pid, if given), and returns
// that pid and the run's error.
func cancelStuckRun(t *testing.T, h *Host, before func(pid int)) (int, error) {
	t.Helper()
	out := newLines()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.Run(ctx, "test", &sdk.Run{Settings: settings(`{"mode":"ignore"}`)}, out.add)
		errc <- err
	}()
	pid := atoi(t, out.waitN(t, 1))[0]
	if before != nil {
		before(pid)
	}
	cancel()
	return pid, <-errc
}

// TestIgnoredCancellation: a handler that ignores cancellation past its
// grace takes its plugin process down (plugin/sdk's watchdog); the run
// returned at cancellation and the next run gets a fresh process.
func TestIgnoredCancellation(t *testing.T) {
	h := newHost(t)
	pid, err := cancelStuckRun(t, h, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	waitGone(t, pid)
	// A run sent in the instant between the process' exit and go-plugin reaping it would
	// fail (and be retried per its job's policy); what this test checks is that the next
	// run after that goes to a fresh process.
	testwait.For(t, 30*time.Second, "the host to notice that the stuck plugin exited", func() bool {
		return exitNoticed(t, h, "test")
	})
	res, err := h.Run(t.Context(), "test", &sdk.Run{Settings: settings(`{"mode":"ok"}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Metadata["pid"] == strconv.Itoa(pid) {
		t.Error("the stuck process still serves")
	}
}

// exitNoticed reports whether h knows that the plugin's current process exited (or
// has none), so that the next run starts a fresh one.
func exitNoticed(t *testing.T, h *Host, plugin string) bool {
	t.Helper()
	s, err := h.supervisor(plugin)
	if err != nil {
		t.Fatal(err)
	}
	s.lock <- struct{}{}
	defer func() { <-s.lock }()
	return s.cur == nil || s.cur.exited()
}

// TestTimeoutIsTheContexts: gRPC hands the deadline to the plugin, whose
// side may expire first; the run must still fail with ctx's deadline, not
// as a plugin failure.
func TestTimeoutIsTheContexts(t *testing.T) {
	h := newHost(t)
	for range 5 {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		_, err := h.Run(ctx, "test", &sdk.Run{Settings: settings(`{"mode":"block"}`)}, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrPluginFailed) {
			t.Fatalf("err = %v, want ctx's deadline", err)
		}
	}
}

// TestRunRefusedByDyingPluginGoesToAFreshOne: a plugin whose watchdog gave up
// on a handler ignoring cancellation refuses new runs while it shuts down
// (Aborted: the handler never saw them); the host sends such a run to a fresh
// process instead of failing it, and at once: the dying process is stopped in
// the background, not under the plugin's lock, so the fresh process serves the
// run while the old one still has its KillTimeout to go.
func TestRunRefusedByDyingPluginGoesToAFreshOne(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{ch: make(chan slog.Record, 100)}
	h := New(Config{
		Builtins: map[string][]string{"test": {build(t, dir, "./testdata/testplugin")}},
		// The dying process stays up (refusing runs) for the whole test.
		Env:            []string{"TESTPLUGIN_SHUTDOWN_GRACE=1m"},
		Logger:         slog.New(rec),
		RestartBackoff: 10 * time.Millisecond,
		KillTimeout:    5 * time.Second,
	})
	t.Cleanup(func() { _ = h.Close() })

	stuckPID, _ := cancelStuckRun(t, h, nil)
	deadline := time.After(30 * time.Second)
	for watchdog := false; !watchdog; {
		select {
		case r := <-rec.ch:
			watchdog = strings.Contains(r.Message, "handler ignored cancellation")
		case <-deadline:
			t.Fatal("the plugin's watchdog never gave up on the stuck handler")
		}
	}
	if !fleettest.Alive(stuckPID) {
		t.Fatalf("the dying plugin %d is gone already; the test needs it to refuse runs", stuckPID)
	}

	res, err := h.Run(t.Context(), "test", &sdk.Run{Settings: settings(`{"mode":"ok"}`)}, nil)
	if err != nil {
		t.Fatalf("run sent while the plugin was shutting down: %v, want it re-sent to a fresh process", err)
	}
	if res.Metadata["pid"] == strconv.Itoa(stuckPID) {
		t.Errorf("the run was served by the dying process %d", stuckPID)
	}
	if !fleettest.Alive(stuckPID) {
		t.Errorf("the dying plugin %d was killed before the run went to a fresh process: the run waited for its stop", stuckPID)
	}
}

// TestRunFieldsReachThePlugin: every field of a run crosses the process boundary.
func TestRunFieldsReachThePlugin(t *testing.T) {
	h := newHost(t)
	at := time.Date(2026, 11, 26, 15, 4, 5, 123e6, time.UTC)
	res, err := h.Run(t.Context(), "test", &sdk.Run{
		Job: "db-backup", ScheduledAt: at, Attempt: 2, FencingToken: 41,
		OccurrenceID: "db-backup@2026-11-26T15:04:05.123Z", Node: "node-a",
		StopWithin: 1500 * time.Millisecond, Settings: settings(`{"mode":"echo"}`),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"job": "db-backup", "scheduled_at": "2026-11-26T15:04:05.123Z", "attempt": "2", "fencing_token": "41",
		"occurrence_id": "db-backup@2026-11-26T15:04:05.123Z", "node": "node-a", "stop_within": "1.5s",
	}
	if diff := cmp.Diff(want, res.Metadata); diff != "" {
		t.Errorf("run as the plugin saw it (-want +got):\n%s", diff)
	}
}
