package pluginhost

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/plugin/handlers/noop"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

func TestPinnedAndWritablePlugins(t *testing.T) {
	dir := t.TempDir()
	bin := build(t, dir, "./testdata/testplugin")
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	sum, err := fileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	host := func(pin Pin, allowWritable bool) *Host {
		h := New(Config{
			Pinned:        map[string]Pin{"pinned": pin},
			AllowWritable: allowWritable,
			Logger:        slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		})
		t.Cleanup(func() { _ = h.Close() })
		return h
	}
	// run runs once on a fresh host and closes it, so the binary is free to change.
	run := func(h *Host) error {
		_, err := h.Run(t.Context(), "pinned", &sdk.Run{Settings: settings(`{"mode":"ok"}`)}, nil)
		if cerr := h.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		return err
	}

	if err := run(host(Pin{Path: bin, SHA256: sum}, false)); err != nil {
		t.Fatalf("pinned plugin with the right checksum: %v", err)
	}
	if err := run(host(Pin{Path: bin}, false)); err != nil {
		t.Fatalf("declared plugin without a pin: %v", err)
	}

	// The binary changes after it was pinned: refused, with both checksums named.
	f, err := os.OpenFile(bin, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("tampered")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	err = run(host(Pin{Path: bin, SHA256: sum}, false))
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), sum) {
		t.Fatalf("changed pinned binary: err = %v, want ErrUntrusted naming the pin", err)
	}

	// A binary others may write is refused unless allowed.
	fresh := build(t, t.TempDir(), "./testdata/testplugin")
	if err := os.Chmod(fresh, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := run(host(Pin{Path: fresh}, false)); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "writable") {
		t.Fatalf("world-writable binary: err = %v, want ErrUntrusted saying why", err)
	}
	if err := run(host(Pin{Path: fresh}, true)); err != nil {
		t.Fatalf("world-writable binary, allowed: %v", err)
	}
}

// TestRunAtStartsOnTime sends runs ahead of their start: the plugin waits, and the handler
// never starts before startAt.
func TestRunAtStartsOnTime(t *testing.T) {
	dir := t.TempDir()
	h := New(Config{Builtins: map[string][]string{"noop": {build(t, dir, "../../cmd/plugins/noop")}}})
	t.Cleanup(func() { _ = h.Close() })
	if _, err := h.Schema(t.Context(), "noop"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		startAt := time.Now().Add(200 * time.Millisecond)
		res, err := h.RunAt(t.Context(), "noop", &sdk.Run{}, startAt, nil)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := strconv.ParseInt(res.Metadata[noop.StartedAtKey], 10, 64)
		if err != nil {
			t.Fatalf("metadata %v: %v", res.Metadata, err)
		}
		if started := time.Unix(0, ns); started.Before(startAt) {
			t.Errorf("handler started %s before its start time", startAt.Sub(started))
		}
	}
}

// TestReplaceablePluginsRefused: a plugin binary that someone else than the runner's user or
// root could replace is refused, naming what is at fault: owned by another user, or in a
// directory (at any depth) that its group or the world may write; a world-writable
// directory with the sticky bit (as /tmp) passes.
func TestReplaceablePluginsRefused(t *testing.T) {
	bin := build(t, t.TempDir(), "./testdata/testplugin")
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := replaceable(bin); err != nil {
		t.Fatalf("a binary of the runner's own: %v", err)
	}
	place := func(t *testing.T, dirMode os.FileMode) (dir, path string) {
		t.Helper()
		dir = filepath.Join(t.TempDir(), "plugins")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(dir, "p")
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, dirMode); err != nil {
			t.Fatal(err)
		}
		return dir, path
	}
	t.Run("world-writable directory", func(t *testing.T) {
		dir, path := place(t, 0o777)
		if err := replaceable(path); err == nil || !strings.Contains(err.Error(), "directory "+dir) {
			t.Errorf("replaceable = %v, want the directory named", err)
		}
		// Through a symlink elsewhere the real place is checked.
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(path, link); err != nil {
			t.Fatal(err)
		}
		if err := replaceable(link); err == nil {
			t.Error("a symlink to a binary in a world-writable directory was accepted")
		}
	})
	t.Run("sticky world-writable directory", func(t *testing.T) {
		_, path := place(t, 0o777|os.ModeSticky)
		if err := replaceable(path); err != nil {
			t.Errorf("replaceable = %v, want a sticky directory accepted", err)
		}
	})
	t.Run("owned by another user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("only root can give a file away")
		}
		_, path := place(t, 0o755)
		if err := os.Chown(path, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		if err := replaceable(path); err == nil || !strings.Contains(err.Error(), "uid 4242") {
			t.Errorf("replaceable = %v, want the owner named", err)
		}
	})
}
