package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cronfleet/cronfleet/internal/pluginhost"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

const checkUsage = `usage: runner plugin check [flags] PATH|BUILTIN

Starts a handler plugin the way a runner does and checks, printing one
"PASS name" or "FAIL name: reason" line each:

  handshake  the binary starts, speaks the protocol version of this runner
             and answers a health check
  schema     the schema is valid: non-empty, unique identifier names, known
             types, defaults of their type, no required attribute with a default
  run        a run returns a result; with -settings it must succeed. Without
             -settings the settings are synthesized from the schema: every
             default, and for each required attribute without one the empty
             value of its type ("" / 0 / false / [] / {}); a handler error
             is then accepted (it proves the round trip) and reported
  start      a run sent -after ahead of its start (RunRequest.
             start_at_monotonic_ns) does not return before it: a plugin that
             calls its handler at once fails (a handler error is accepted, as
             in run)
  cancel     a run cancelled after -after returns within -grace of it, and
             the plugin answers afterwards
  timeout    a run whose ctx times out after -after returns within -grace,
             with the deadline as its error, and the plugin answers afterwards

cancel and timeout run with -long-settings (default: the run's settings). To
test a handler's cancellation for real, give settings that make it run
longer than -after (exec: {"command":["sleep","60"]}); a run that ends
before -after passes them trivially, which the line says.

The exit status is 1 if any check failed.

Flags:
`

// pluginCheck is "runner plugin check".
func pluginCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plugin check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, checkUsage)
		fs.PrintDefaults()
	}
	settingsFlag := fs.String("settings", "", "settings for the run check, a JSON object (default: synthesized from the schema)")
	longFlag := fs.String("long-settings", "", "settings for the cancel and timeout checks, a JSON object (default: those of the run check)")
	after := fs.Duration("after", 300*time.Millisecond, "when the cancel and timeout checks cancel their run")
	grace := fs.Duration("grace", 3*time.Second, "how soon after its cancellation a run must have returned")
	timeout := fs.Duration("timeout", 30*time.Second, "bound of each check (start, schema, run)")
	verbose := fs.Bool("v", false, "log the host's and the plugin's logs to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError{2}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{2}
	}
	for _, s := range []*string{settingsFlag, longFlag} {
		if *s != "" && !json.Valid([]byte(*s)) {
			return fmt.Errorf("plugin check: settings %q are not JSON", *s)
		}
	}
	target := fs.Arg(0)
	argv, err := checkTarget(target)
	if err != nil {
		return err
	}

	level := slog.LevelError + 1
	if *verbose {
		level = slog.LevelDebug
	}
	host := pluginhost.New(pluginhost.Config{
		Builtins:       map[string][]string{"plugin": argv},
		Logger:         slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		StartTimeout:   *timeout,
		KillTimeout:    *grace + 2*time.Second,
		HealthInterval: time.Nanosecond, // every check asks
		HealthTimeout:  *timeout,
	})
	defer host.Close()

	c := &checker{host: host, out: stdout, timeout: *timeout, after: *after, grace: *grace}
	c.run(*settingsFlag, *longFlag)
	if c.failed {
		return exitError{1}
	}
	return nil
}

// checkTarget resolves PATH|BUILTIN to an argv. A name with a slash, or a
// file that exists, is a binary; otherwise it names a built-in plugin.
func checkTarget(target string) ([]string, error) {
	if fi, err := os.Stat(target); err == nil || strings.ContainsRune(target, '/') {
		if err != nil {
			return nil, fmt.Errorf("plugin check: %w", err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return nil, fmt.Errorf("plugin check: %s is not an executable file", target)
		}
		abs, err := filepath.Abs(target)
		if err != nil {
			return nil, fmt.Errorf("plugin check: %w", err)
		}
		return []string{abs}, nil
	}
	cmds, err := builtinCommands()
	if err != nil {
		return nil, err
	}
	argv, ok := cmds[target]
	if !ok {
		return nil, fmt.Errorf("plugin check: %q is neither a file nor a built-in plugin (have %v)", target, builtinNames())
	}
	return argv, nil
}

// checker runs the checks in order; a check whose prerequisite failed
// fails as skipped.
type checker struct {
	host           *pluginhost.Host
	out            io.Writer
	timeout, after time.Duration
	grace          time.Duration
	failed         bool
}

func (c *checker) pass(name, format string, args ...any) {
	if format != "" {
		fmt.Fprintf(c.out, "PASS %s: %s\n", name, fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintf(c.out, "PASS %s\n", name)
}

func (c *checker) fail(name, format string, args ...any) {
	c.failed = true
	fmt.Fprintf(c.out, "FAIL %s: %s\n", name, oneLine(fmt.Sprintf(format, args...)))
}

// oneLine joins the non-empty lines of a multi-line reason (go-plugin's
// start errors have several) so that each check stays one line.
func oneLine(s string) string {
	var parts []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

func (c *checker) run(settings, long string) {
	ctx := context.Background() // the subcommand's root
	names := []string{"handshake", "schema", "run", "start", "cancel", "timeout"}
	skip := func(from int, why string) {
		for _, n := range names[from:] {
			c.fail(n, "skipped: %s", why)
		}
	}

	sctx, cancel := context.WithTimeout(ctx, c.timeout)
	err := c.host.Start(sctx, "plugin")
	cancel()
	if err != nil {
		c.fail("handshake", "%v", err)
		skip(1, "no handshake")
		return
	}
	c.pass("handshake", "")

	sctx, cancel = context.WithTimeout(ctx, c.timeout)
	schema, err := c.host.Schema(sctx, "plugin")
	cancel()
	if err != nil {
		c.fail("schema", "%v", err)
		skip(2, "no valid schema")
		return
	}
	c.pass("schema", "%d attributes%s", len(schema.Attributes), attributeList(schema))

	synthesized := settings == ""
	if synthesized {
		settings = string(synthesize(schema))
	}
	if long == "" {
		long = settings
	}
	if !c.runCheck(ctx, schema, settings, synthesized) {
		skip(3, "no successful run")
		return
	}
	c.startAtCheck(ctx, settings)
	c.cancelCheck(ctx, "cancel", long, func(ctx context.Context) (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(ctx)
		t := time.AfterFunc(c.after, cancel)
		return ctx, func() { t.Stop(); cancel() }
	}, context.Canceled)
	c.cancelCheck(ctx, "timeout", long, func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, c.after)
	}, context.DeadlineExceeded)
}

func attributeList(s sdk.Schema) string {
	if len(s.Attributes) == 0 {
		return ""
	}
	var parts []string
	for _, a := range s.Attributes {
		p := a.Name + " " + a.Type.String()
		if a.Required {
			p += " (required)"
		}
		parts = append(parts, p)
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// synthesize builds settings from a schema; see checkUsage.
func synthesize(s sdk.Schema) json.RawMessage {
	obj := map[string]any{}
	for _, a := range s.Attributes {
		switch {
		case a.Default != nil:
			obj[a.Name] = a.Default
		case a.Required:
			obj[a.Name] = map[sdk.Type]any{
				sdk.TypeString: "", sdk.TypeNumber: 0, sdk.TypeBool: false, sdk.TypeAny: "",
				sdk.TypeListString: []string{}, sdk.TypeListNumber: []float64{}, sdk.TypeMapString: map[string]string{},
			}[a.Type]
		}
	}
	b, _ := json.Marshal(obj) // values of known JSON types
	return b
}

func (c *checker) runCheck(ctx context.Context, schema sdk.Schema, settings string, synthesized bool) bool {
	if err := schema.CheckSettings(json.RawMessage(settings)); err != nil {
		c.fail("run", "settings %s do not match the schema: %v", settings, err)
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	lines := 0
	res, err := c.host.Run(rctx, "plugin", c.newRun(settings), func(string) { lines++ })
	switch {
	case errors.Is(err, pluginhost.ErrPluginFailed):
		c.fail("run", "%v", err)
		return false
	case rctx.Err() != nil:
		c.fail("run", "no result within %s: %v", c.timeout, err)
		return false
	case err != nil && !synthesized:
		c.fail("run", "handler failed with settings %s: %v", settings, err)
		return false
	case err != nil:
		c.pass("run", "the handler answered with an error for the synthesized settings %s (give -settings for a real run): %v", settings, err)
		return true
	}
	c.pass("run", "%q, %d output lines", res.Message, lines)
	return true
}

// startAtCheck sends a run ahead of its start time, as a runner does with every run it
// claims ahead: a plugin that calls its handler at once would start jobs early.
func (c *checker) startAtCheck(ctx context.Context, settings string) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	startAt := time.Now().Add(c.after)
	_, err := c.host.RunAt(rctx, "plugin", c.newRun(settings), startAt, nil)
	returned := time.Now()
	switch {
	case errors.Is(err, pluginhost.ErrPluginFailed):
		c.fail("start", "%v", err)
	case rctx.Err() != nil:
		c.fail("start", "no result within %s: %v", c.timeout, err)
	case returned.Before(startAt):
		c.fail("start", "the run returned %s before its start time: the plugin does not wait for RunRequest.start_at_monotonic_ns",
			startAt.Sub(returned).Round(time.Millisecond))
	default:
		c.pass("start", "returned %s after its start time", returned.Sub(startAt).Round(time.Millisecond))
	}
}

func (c *checker) cancelCheck(ctx context.Context, name, settings string, stop func(context.Context) (context.Context, context.CancelFunc), want error) {
	rctx, cancel := stop(ctx)
	defer cancel()
	start := time.Now()
	_, err := c.host.Run(rctx, "plugin", c.newRun(settings), nil)
	took := time.Since(start)
	switch {
	case rctx.Err() == nil:
		c.pass(name, "trivially: the run ended after %s, before it was cancelled", took.Round(time.Millisecond))
		return
	case took > c.after+c.grace:
		c.fail(name, "the run returned %s after its cancellation (grace %s)", (took - c.after).Round(time.Millisecond), c.grace)
		return
	case !errors.Is(err, want):
		c.fail(name, "the cancelled run returned %v, want an error wrapping %v", err, want)
		return
	}
	hctx, hcancel := context.WithTimeout(ctx, c.grace)
	defer hcancel()
	if err := c.host.Start(hctx, "plugin"); err != nil {
		c.fail(name, "the plugin does not answer after a cancelled run: %v", err)
		return
	}
	c.pass(name, "returned %s after cancellation", (took - c.after).Round(time.Millisecond))
}

func (c *checker) newRun(settings string) *sdk.Run {
	at := time.Now().UTC().Truncate(time.Second)
	return &sdk.Run{
		Job:          "plugin-check",
		ScheduledAt:  at,
		Attempt:      1,
		FencingToken: 1,
		OccurrenceID: "plugin-check@" + at.Format(time.RFC3339),
		Node:         "plugin-check",
		Settings:     json.RawMessage(settings),
	}
}
