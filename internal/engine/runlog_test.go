package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// TestRunLogLines: each run logs one start line and one end line, with the fields an
// operator greps for; the end line's level and reason say how it ended.
func TestRunLogLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newMemAgenda(5 * time.Second)
		fail := func(ctx context.Context, r *sdk.Run) (*sdk.Result, error) {
			if r.Job == "bad" {
				return nil, sdk.Permanent(errors.New("no such table"))
			}
			return nil, nil
		}
		n, h := runInBubble(t, a, jobFile(time.Second, "good", "bad"), fail, nil)
		sleepUntil(3 * time.Second)
		n.stop()

		runs := h.started()
		if len(runs) != 2 {
			t.Fatalf("runs %+v, want 2", runs)
		}
		logs := n.logs.String()
		for _, r := range runs {
			var starts, ends []string
			for l := range strings.Lines(logs) {
				if !strings.Contains(l, " occurrence="+r.OccurrenceID+" ") {
					continue
				}
				switch {
				case strings.Contains(l, `msg="run started"`):
					starts = append(starts, l)
				case strings.Contains(l, `msg="run ended"`):
					ends = append(ends, l)
				}
			}
			if len(starts) != 1 || len(ends) != 1 {
				t.Errorf("%s: start lines %q, end lines %q, want one each", r.OccurrenceID, starts, ends)
				continue
			}
			common := []string{" attempt=1 ", fmt.Sprintf(" fencing_token=%d ", r.FencingToken), " lateness="}
			want := map[string][]string{
				"good": {"level=INFO", " status=succeeded ", " duration="},
				"bad":  {"level=ERROR", " status=failed ", " duration=", ` reason="failed; no retry`, ` err="no such table"`},
			}
			job := r.OccurrenceID[:strings.LastIndexByte(r.OccurrenceID, '@')]
			for _, w := range append(common, " job="+job+" ", "level=INFO") {
				if !strings.Contains(starts[0], w) {
					t.Errorf("start line %q lacks %q", starts[0], w)
				}
			}
			for _, w := range append(common, want[job]...) {
				if !strings.Contains(ends[0], w) {
					t.Errorf("end line %q lacks %q", ends[0], w)
				}
			}
		}
	})
}

// BenchmarkRunLogLines is what a run's two log lines cost a node at info level, as the
// runner writes them (its logger carries the node's name), next to the node's CPU per
// occurrence in internal/cmd/fleetbench. At warn level the lines cost only the check that
// skips them.
func BenchmarkRunLogLines(b *testing.B) {
	for _, bc := range []struct {
		name  string
		level slog.Level
		json  bool
	}{{"text/info", slog.LevelInfo, false}, {"json/info", slog.LevelInfo, true}, {"text/warn", slog.LevelWarn, false}} {
		b.Run(bc.name, func(b *testing.B) {
			opts := &slog.HandlerOptions{Level: bc.level}
			var h slog.Handler = slog.NewTextHandler(io.Discard, opts)
			if bc.json {
				h = slog.NewJSONHandler(io.Discard, opts)
			}
			e := &Engine{log: slog.New(h).With("node", "node-1")}
			due := time.Date(2026, 12, 6, 5, 2, 46, 0, time.UTC)
			c := queue.Claim{Occurrence: "bench-1110@2026-12-06T05:02:46.000Z", Job: "bench-1110", Attempt: 1, Token: 1796533365770000}
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				a := &attempt{claim: c, due: due, rec: &queue.Record{StartedAt: due.Add(500 * time.Microsecond), EndedAt: due.Add(2 * time.Millisecond)},
					log: e.runLog(c)}
				a.log.Info("run started", "lateness", a.rec.StartedAt.Sub(a.due))
				a.rec.Status, a.end.level = queue.StatusSucceeded, slog.LevelInfo
				e.logEnd(ctx, a)
			}
		})
	}
}
