package pluginhost

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"slices"

	"github.com/hashicorp/go-hclog"
)

// hclogTrace is the slog level hclog's Trace maps to.
const hclogTrace = slog.LevelDebug - 4

// slogAdapter is the hclog.Logger go-plugin needs, forwarding to slog. It is
// how a plugin's structured stderr lines (parsed by go-plugin) become slog
// records of the runner, tagged with the plugin's name by the caller.
type slogAdapter struct {
	l       *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*slogAdapter)(nil)

func newHCLogger(l *slog.Logger) hclog.Logger { return &slogAdapter{l: l} }

func toSlogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return hclogTrace
	case hclog.Debug, hclog.NoLevel:
		return slog.LevelDebug
	case hclog.Info:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// hclog's methods carry no ctx, so the adapter logs with a background one;
// slog's own Info/Debug do the same.

func (a *slogAdapter) enabled(level slog.Level) bool {
	return a.l.Enabled(context.Background(), level)
}

func (a *slogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	// go-plugin names the plugin's path "plugin"; that key is ours.
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == "plugin" {
			args = slices.Clone(args)
			args[i] = "plugin_path"
		}
	}
	a.l.Log(context.Background(), toSlogLevel(level), msg, args...)
}

func (a *slogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *slogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *slogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *slogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *slogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *slogAdapter) IsTrace() bool { return a.enabled(hclogTrace) }
func (a *slogAdapter) IsDebug() bool { return a.enabled(slog.LevelDebug) }
func (a *slogAdapter) IsInfo() bool  { return a.enabled(slog.LevelInfo) }
func (a *slogAdapter) IsWarn() bool  { return a.enabled(slog.LevelWarn) }
func (a *slogAdapter) IsError() bool { return a.enabled(slog.LevelError) }

func (a *slogAdapter) ImpliedArgs() []any { return a.implied }

func (a *slogAdapter) With(args ...any) hclog.Logger {
	return &slogAdapter{l: a.l.With(args...), name: a.name, implied: append(append([]any(nil), a.implied...), args...)}
}

func (a *slogAdapter) Name() string { return a.name }

// Named keeps the name for Name but adds nothing to records: go-plugin
// names loggers after the plugin's path, which the plugin attribute
// already says.
func (a *slogAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return &slogAdapter{l: a.l, name: name, implied: a.implied}
}

func (a *slogAdapter) ResetNamed(name string) hclog.Logger {
	return &slogAdapter{l: a.l, name: name, implied: a.implied}
}

// SetLevel is a no-op: the slog handler owns the level.
func (a *slogAdapter) SetLevel(hclog.Level) {}

func (a *slogAdapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if a.enabled(toSlogLevel(l)) {
			return l
		}
	}
	return hclog.Off
}

func (a *slogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *slogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &lineLogger{log: a.l, level: slog.LevelInfo}
}

// lineLogger logs every complete line written to it. It takes a plugin's
// plain stdout/stderr (forwarded by go-plugin) and hclog's standard writer.
// go-plugin writes to it from one goroutine per stream.
type lineLogger struct {
	log   *slog.Logger
	level slog.Level
	attrs []any
	buf   []byte
}

func (w *lineLogger) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.log.Log(context.Background(), w.level, string(bytes.TrimSuffix(w.buf[:i], []byte{'\r'})), w.attrs...)
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a runaway line without newline
		w.log.Log(context.Background(), w.level, string(w.buf), w.attrs...)
		w.buf = nil
	}
	return len(p), nil
}
