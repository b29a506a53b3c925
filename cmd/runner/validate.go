package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

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

// load reads job files, checks their plugins exist and decodes every handler block against
// its plugin's schema (which starts those plugins); it prints diagnostics to w.
func load(paths []string, host *pluginhost.Host, w io.Writer) (*config.Config, bool) {
	cfg, src, diags := config.Load(paths...)
	if !diags.HasErrors() {
		diags = append(diags, cfg.CheckPlugins(host.Has)...)
	}
	if !diags.HasErrors() {
		diags = append(diags, cfg.DecodeHandlers(schemas(host))...)
	}
	if len(diags) > 0 {
		_ = src.WriteDiagnostics(w, diags)
	}
	return cfg, !diags.HasErrors()
}

// schemas asks the plugin host for a plugin's schema, in the config's terms.
func schemas(host *pluginhost.Host) config.HandlerSchemas {
	return func(plugin string) ([]config.HandlerAttribute, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := host.Schema(ctx, plugin)
		if err != nil {
			return nil, err
		}
		attrs := make([]config.HandlerAttribute, len(s.Attributes))
		for i, a := range s.Attributes {
			attrs[i] = config.HandlerAttribute{Name: a.Name, Type: a.Type.String(), Required: a.Required}
			if a.Default != nil {
				if attrs[i].Default, err = json.Marshal(a.Default); err != nil {
					return nil, fmt.Errorf("default of %q: %w", a.Name, err)
				}
			}
		}
		return attrs, nil
	}
}
