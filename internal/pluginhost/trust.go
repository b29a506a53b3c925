package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/go-plugin"
)

// Pin declares a third-party plugin by path, optionally pinned by checksum (the job files'
// plugin blocks).
type Pin struct {
	// Path is the plugin binary.
	Path string
	// SHA256 is its expected hex checksum; empty means not pinned.
	SHA256 string
}

// trust checks a third-party plugin binary before it is started, and returns the
// SecureConfig that makes go-plugin verify the checksum of what it executes. A binary that
// someone else than the runner's user (or root) could replace under the runner's feet is
// refused unless Config.AllowWritable says otherwise, as sudo, ssh and Vault's plugin
// catalog do: the binary must be owned by root or the runner's user and writable by no one
// else, and so must every directory up to the root (a world-writable directory passes only
// with its sticky bit, which keeps others from replacing what they do not own). A pinned
// binary whose checksum differs is refused with both checksums named. go-plugin checks the
// checksum again at start, so a binary swapped between the two checks is refused as well.
func (h *Host) trust(name, path string) (*plugin.SecureConfig, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUntrusted, name, err)
	}
	if !h.cfg.AllowWritable {
		if err := replaceable(path); err != nil {
			return nil, fmt.Errorf("%w: %s: %w: fix the owner or permissions, or allow writable plugins", ErrUntrusted, name, err)
		}
	}
	pin := h.cfg.Pinned[name]
	if pin.SHA256 == "" {
		return nil, nil
	}
	want, err := hex.DecodeString(pin.SHA256)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("%w: %s: pinned sha256 %q is not 64 hex digits", ErrUntrusted, name, pin.SHA256)
	}
	got, err := fileSHA256(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUntrusted, name, err)
	}
	if got != pin.SHA256 {
		return nil, fmt.Errorf("%w: %s: %s has sha256 %s, but the job files pin %s: refusing a changed binary",
			ErrUntrusted, name, path, got, pin.SHA256)
	}
	return &plugin.SecureConfig{Checksum: want, Hash: sha256.New()}, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// replaceable says why someone else than the runner's user or root could replace the binary
// at path, or the directories that lead to it; nil if no one can.
func replaceable(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return err
	}
	me := os.Geteuid()
	for p, file := real, true; ; p, file = filepath.Dir(p), false {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		what := "directory " + p
		if file {
			what = p
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != 0 && int(st.Uid) != me {
			return fmt.Errorf("%s is owned by uid %d, neither root nor the runner's user (uid %d)", what, st.Uid, me)
		}
		perm := fi.Mode().Perm()
		sticky := fi.Mode()&os.ModeSticky != 0
		if perm&0o022 != 0 && (file || !sticky) {
			return fmt.Errorf("%s is group- or world-writable (mode %#o)", what, perm)
		}
		if parent := filepath.Dir(p); parent == p {
			return nil
		}
	}
}
