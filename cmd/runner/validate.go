package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/pluginhost"
)

// validate checks job files without touching Redis or starting anything.
func validate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pluginDir := fs.String("plugin-dir", "", "directory of third-party plugin binaries")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: runner validate [-plugin-dir DIR] PATH…")
		return exitError{2}
	}
	host, err := newHost(*pluginDir, pluginhost.Config{})
	if err != nil {
		return err
	}
	defer host.Close()
	cfg, ok := load(fs.Args(), host, stderr)
	if !ok {
		return exitError{1}
	}
	fmt.Fprintf(stdout, "ok: %d jobs, namespace %q\n", len(cfg.Jobs), cfg.Runner.Namespace)
	return nil
}

// load reads job files and checks their plugins exist; it prints diagnostics to w.
func load(paths []string, host *pluginhost.Host, w io.Writer) (*config.Config, bool) {
	cfg, src, diags := config.Load(paths...)
	if !diags.HasErrors() {
		diags = append(diags, cfg.CheckPlugins(host.Has)...)
	}
	if len(diags) > 0 {
		_ = src.WriteDiagnostics(w, diags)
	}
	return cfg, !diags.HasErrors()
}
