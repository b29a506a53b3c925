package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/cronfleet/cronfleet/internal/pluginhost"
	"github.com/cronfleet/cronfleet/plugin/handlers/exec"
	httphandler "github.com/cronfleet/cronfleet/plugin/handlers/http"
	"github.com/cronfleet/cronfleet/plugin/handlers/noop"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// builtins are the handlers served by the runner binary itself, out of process: the runner
// re-executes itself as "runner plugin serve NAME", so it works without a build step.
func builtins() map[string]func() sdk.Handler {
	return map[string]func() sdk.Handler{
		"exec": exec.New,
		"http": httphandler.New,
		"noop": noop.New,
	}
}

// builtinCommands maps each built-in plugin to the argv that serves it.
func builtinCommands() (map[string][]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locate own binary for built-in plugins: %w", err)
	}
	cmds := map[string][]string{}
	for name := range builtins() {
		cmds[name] = []string{self, "plugin", "serve", name}
	}
	return cmds, nil
}

func newHost(dir string, cfg pluginhost.Config) (*pluginhost.Host, error) {
	cmds, err := builtinCommands()
	if err != nil {
		return nil, err
	}
	cfg.Dir, cfg.Builtins = dir, cmds
	return pluginhost.New(cfg), nil
}

// pluginCmd is "runner plugin ...": "check" prints its PASS/FAIL lines to
// stdout and its diagnostics to stderr; "serve" serves a built-in handler to
// the runner that re-executed this binary.
func pluginCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) >= 1 && args[0] == "check" {
		return pluginCheck(args[1:], stdout, stderr)
	}
	if len(args) == 2 && args[0] == "serve" {
		h, ok := builtins()[args[1]]
		if !ok {
			return fmt.Errorf("plugin serve: no built-in plugin %q (have %v)", args[1], builtinNames())
		}
		sdk.Serve(h())
		return nil
	}
	fmt.Fprintf(stderr, "usage:\n  runner plugin check [flags] PATH|BUILTIN   (conformance checks; -h for flags)\n"+
		"  runner plugin serve NAME                   (internal: serves a built-in)\n(built-ins: %v)\n", builtinNames())
	return exitError{2}
}

func builtinNames() []string {
	var names []string
	for n := range builtins() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
