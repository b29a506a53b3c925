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
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// validate checks job files without touching Redis or starting anything.
func validate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pluginDir := fs.String("plugin-dir", "", "directory of third-party plugin binaries")
	allowWritable := fs.Bool("allow-writable-plugins", false, "run plugin binaries that others than the runner's user or root could replace (unsafe)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: runner validate [-plugin-dir DIR] PATH…")
		return exitError{2}
	}
	cfg, host, err := load(fs.Args(), *pluginDir, pluginhost.Config{AllowWritable: *allowWritable}, stderr)
	if host != nil {
		defer host.Close()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ok: %d jobs, namespace %q\n", len(cfg.Jobs), cfg.Runner.Namespace)
	return nil
}

// load reads job files, starts a plugin host knowing the runner's plugins and the files'
// plugin blocks, checks that every handler's plugin exists and decodes every handler block
// against its plugin's schema (which starts those plugins). It prints diagnostics to w and
// then returns exitError{1}. The caller closes the host, which may be returned with an
// error.
func load(paths []string, pluginDir string, hostCfg pluginhost.Config, w io.Writer) (*config.Config, *pluginhost.Host, error) {
	cfg, src, diags := config.Load(paths...)
	if diags.HasErrors() {
		_ = src.WriteDiagnostics(w, diags)
		return nil, nil, exitError{1}
	}
	hostCfg.Pinned = map[string]pluginhost.Pin{}
	hostCfg.MaxConcurrent = map[string]int{}
	for _, p := range cfg.Plugins {
		hostCfg.Pinned[p.Name] = pluginhost.Pin{Path: p.Path, SHA256: p.SHA256}
		hostCfg.MaxConcurrent[p.Name] = p.MaxConcurrent
	}
	host, err := newHost(pluginDir, hostCfg)
	if err != nil {
		return nil, nil, err
	}
	if err := checkJobs(cfg, src, host, w); err != nil {
		return nil, host, err
	}
	return cfg, host, nil
}

// checkJobs checks what config.Load cannot alone, with the plugins of host: that every
// handler's plugin exists, and every handler block against its plugin. It prints the
// diagnostics to w and then returns exitError{1}. A config that passes is compacted: the
// node runs it, and nothing reads its handler blocks' syntax any more.
func checkJobs(cfg *config.Config, src *config.Sources, host *pluginhost.Host, w io.Writer) error {
	diags := cfg.CheckPlugins(host.Has)
	if !diags.HasErrors() {
		diags = append(diags, cfg.DecodeHandlers(schemas(host))...)
		diags = append(diags, cfg.CheckHandlers(checks(host))...)
	}
	if len(diags) > 0 {
		_ = src.WriteDiagnostics(w, diags)
	}
	if diags.HasErrors() {
		return exitError{1}
	}
	cfg.Compact()
	return nil
}

// checks asks the plugins about handler settings for config.CheckHandlers. A built-in
// plugin is this binary, re-executed, and a built-in name always means it (the host lets
// builtins shadow every other plugin), so its checks run here, with the same code the plugin
// process would run (sdk.Check is the SDK server's own path): a large job set is checked
// without a round trip per handler block. Every other plugin is asked in its process.
func checks(host *pluginhost.Host) config.HandlerChecks {
	local := map[string]sdk.Handler{}
	for name, h := range builtins() {
		local[name] = h()
	}
	return func(plugin string, settings json.RawMessage) ([]config.HandlerProblem, error) {
		if h, ok := local[plugin]; ok {
			ps := sdk.Check(h, settings)
			out := make([]config.HandlerProblem, len(ps))
			for i, p := range ps {
				out[i] = config.HandlerProblem{Attribute: p.Attribute, Message: p.Message}
			}
			return out, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ps, err := host.Check(ctx, plugin, settings)
		if err != nil {
			return nil, err
		}
		out := make([]config.HandlerProblem, len(ps))
		for i, p := range ps {
			out[i] = config.HandlerProblem{Attribute: p.Attribute, Message: p.Message}
		}
		return out, nil
	}
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
			// The host keeps each default as the JSON the plugin sent.
			def, _ := a.Default.(json.RawMessage)
			attrs[i] = config.HandlerAttribute{Name: a.Name, Type: a.Type.String(), Required: a.Required, Default: def}
		}
		return attrs, nil
	}
}
