package engine

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// TestRunLogLinesAsWith checks that a run's logger, which adds the run's attributes only
// when a line is written, writes the lines slog.Logger.With would, through the text and
// JSON handlers, with attributes and groups added after the run's.
func TestRunLogLinesAsWith(t *testing.T) {
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	for _, mk := range []func(io.Writer) slog.Handler{
		func(w io.Writer) slog.Handler {
			return slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: noTime})
		},
		func(w io.Writer) slog.Handler {
			return slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: noTime})
		},
	} {
		var want, got bytes.Buffer
		c := queue.Claim{Job: "backup nightly", Occurrence: "backup nightly@2026-12-06T10:00:00.000Z", Attempt: 2, Token: 1765015200000001}
		wl := slog.New(mk(&want)).With("job", c.Job, "occurrence", c.Occurrence, "attempt", c.Attempt, "fencing_token", c.Token)
		gl := (&Engine{log: slog.New(mk(&got))}).runLog(c)
		for _, l := range []*slog.Logger{wl, gl} {
			l.Debug("not written")
			l.Info("run started", "lateness", 3*time.Millisecond)
			l.With("parts", 4).Warn("split")
			l.WithGroup("end").Error("run ended", "status", "failed")
		}
		if got.String() != want.String() {
			t.Errorf("run logger wrote\n%s\nwant, as With writes,\n%s", got.String(), want.String())
		}
		if !strings.Contains(got.String(), "1765015200000001") {
			t.Errorf("run logger's lines lack the run's attributes:\n%s", got.String())
		}
	}
}
