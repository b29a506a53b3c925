package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/engine"
	"github.com/cronfleet/cronfleet/internal/gctune"
	"github.com/cronfleet/cronfleet/internal/pluginhost"
)

// reloader reloads a running node's job files on SIGHUP and when they change on disk. A set
// that does not validate is refused with its diagnostics, and the node keeps its last good
// one.
type reloader struct {
	paths []string
	host  *pluginhost.Host
	eng   *engine.Engine
	log   *slog.Logger
	// cur is the last good set; the HTTP API reads it too.
	cur *atomic.Pointer[config.Config]
}

// settle is how long the files must stay unchanged before they are read: an editor or a
// deployment writes a file in several steps, or several files one after the other.
const settle = 250 * time.Millisecond

// run watches until ctx ends.
func (r *reloader) run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w, err := r.watch(); err != nil {
		// Not fatal: the node runs its job set, and SIGHUP still reloads it.
		r.log.Warn("cannot watch the job files for changes; SIGHUP reloads them", "err", err)
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			r.log.Info("SIGHUP: reloading the job files")
			r.reload()
		case ev := <-events:
			if r.concerns(ev.Name) {
				timer.Reset(settle)
			}
		case err := <-errs:
			r.log.Warn("watching the job files failed; SIGHUP still reloads them", "err", err)
		case <-timer.C:
			r.log.Info("job files changed on disk: reloading them")
			r.reload()
		}
	}
}

// watch watches the directories of the job files: a file is watched through its directory,
// because editors and deployments replace files by renaming over them, which ends a watch on
// the file itself.
func (r *reloader) watch() (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	dirs := map[string]bool{}
	for _, p := range r.paths {
		dir := p
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			dir = filepath.Dir(p)
		}
		abs, err := filepath.Abs(dir)
		if err != nil || dirs[abs] {
			continue
		}
		dirs[abs] = true
		if err := w.Add(abs); err != nil {
			w.Close()
			return nil, fmt.Errorf("watch %s: %w", dir, err)
		}
	}
	return w, nil
}

// concerns reports whether a change to the file name may change the job set: it is one of
// the paths, or an .hcl file in a directory that is one.
func (r *reloader) concerns(name string) bool {
	abs, err := filepath.Abs(name)
	if err != nil {
		return false
	}
	for _, p := range r.paths {
		pa, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		if abs == pa || filepath.Dir(abs) == pa && strings.HasSuffix(abs, ".hcl") {
			return true
		}
	}
	return false
}

// reload reads the job files again and hands the engine the new set, if it is valid and
// needs no restart.
func (r *reloader) reload() {
	cfg, src, diags := config.Load(r.paths...)
	var out bytes.Buffer
	if diags.HasErrors() {
		_ = src.WriteDiagnostics(&out, diags)
		r.log.Error("job files not reloaded: they do not validate; the node keeps its last good set", "diagnostics", out.String())
		return
	}
	if err := checkJobs(cfg, src, r.host, &out); err != nil {
		r.log.Error("job files not reloaded: they do not validate; the node keeps its last good set", "diagnostics", out.String())
		return
	}
	if why := needsRestart(r.cur.Load(), cfg); why != "" {
		r.log.Error("job files not reloaded: "+why+"; restart the node to apply them, it keeps its last good set meanwhile", "diagnostics", out.String())
		return
	}
	if config.SetHash(cfg.Jobs) == config.SetHash(r.cur.Load().Jobs) {
		r.log.Info("job files reloaded: no job changed")
		r.cur.Store(cfg)
		return
	}
	r.cur.Store(cfg)
	r.eng.Reload(cfg.Jobs)
	gctune.Release()
}

// needsRestart says what changed between the running set and next that a running node
// cannot take on, or returns "".
func needsRestart(cur, next *config.Config) string {
	switch {
	case cur.Runner != next.Runner:
		return fmt.Sprintf("the runner block changed (namespace %q, lease %s to namespace %q, lease %s)",
			cur.Runner.Namespace, cur.Runner.Lease, next.Runner.Namespace, next.Runner.Lease)
	case !slices.EqualFunc(cur.Plugins, next.Plugins, func(a, b *config.Plugin) bool {
		return a.Name == b.Name && a.Path == b.Path && a.SHA256 == b.SHA256 && a.MaxConcurrent == b.MaxConcurrent
	}):
		return "the plugin blocks changed"
	}
	return ""
}
