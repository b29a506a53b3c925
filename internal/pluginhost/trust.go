package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

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
// others than its owner may write could be replaced under the runner's feet, so it is
// refused unless Config.AllowWritable says otherwise; a pinned binary whose checksum differs
// is refused with both checksums named. go-plugin checks the checksum again at start, so a
// binary swapped between the two checks is refused as well.
func (h *Host) trust(name, path string) (*plugin.SecureConfig, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUntrusted, name, err)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 && !h.cfg.AllowWritable {
		return nil, fmt.Errorf("%w: %s: %s is group- or world-writable (mode %#o): fix its permissions (chmod go-w) or allow writable plugins",
			ErrUntrusted, name, path, perm)
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
