package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// historyCmd is "runner history [-n 20] [-json] JOB": a job's recent runs, newest first, as
// the fleet recorded them in Redis.
func historyCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ff fleetFlags
	ff.register(fs)
	n := fs.Int("n", 20, "how many runs, newest first")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: runner history [-config PATH] [-redis URL] [-namespace NS] [-n 20] [-json] JOB")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 || *n < 1 {
		fs.Usage()
		return exitError{2}
	}
	job := fs.Arg(0)
	v, err := ff.open("history", stderr)
	if err != nil {
		return err
	}
	defer v.close()
	if v.cfg != nil && v.cfg.Job(job) == nil {
		// Not an error: a job removed from the files keeps its history.
		fmt.Fprintf(stderr, "runner history: note: no job %q in the job files\n", job)
	}
	recs, err := v.queue.History(context.Background(), job, *n)
	if err != nil {
		return err
	}
	// History keeps records in the order they were written; an occurrence skipped at its
	// due time is written before the run it overlapped ends. Readers scan by due time.
	slices.SortStableFunc(recs, func(a, b queue.Record) int { return b.ScheduledAt.Compare(a.ScheduledAt) })
	if ff.json {
		return writeHistoryJSON(stdout, recs)
	}
	writeHistoryTable(stdout, recs)
	return nil
}

// historyRecord is a run as `runner history -json` prints it: the stored record, plus the
// two figures a reader computes first, for a run whose handler ran.
type historyRecord struct {
	queue.Record
	// LatenessMS is how long after its due time the handler started.
	LatenessMS *float64 `json:"lateness_ms,omitempty"`
	// DurationMS is how long the handler ran.
	DurationMS *float64 `json:"duration_ms,omitempty"`
}

func writeHistoryJSON(w io.Writer, recs []queue.Record) error {
	out := make([]historyRecord, len(recs))
	for i, r := range recs {
		out[i] = historyRecord{Record: r}
		if ran(r) {
			late, dur := ms(r.StartedAt.Sub(r.ScheduledAt)), ms(r.EndedAt.Sub(r.StartedAt))
			out[i].LatenessMS, out[i].DurationMS = &late, &dur
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeHistoryTable(w io.Writer, recs []queue.Record) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEDULED (UTC)\tSTATUS\tNODE\tATTEMPT\tTOKEN\tLATENESS\tDURATION\tOUTPUT")
	for _, r := range recs {
		out := r.Error
		if out == "" {
			out = r.Message
		}
		if out == "" {
			out = lastLine(r.Output)
		}
		late, dur := "-", "-"
		if ran(r) {
			late, dur = round(r.StartedAt.Sub(r.ScheduledAt)), round(r.EndedAt.Sub(r.StartedAt))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.ScheduledAt.UTC().Format("2006-01-02 15:04:05.000"), r.Status,
			r.Node, r.Attempt, r.FencingToken, late, dur, oneLineExcerpt(out))
	}
	_ = tw.Flush()
	if len(recs) == 0 {
		fmt.Fprintln(w, "(no runs recorded)")
	}
}

// ran reports whether the record's handler ran: skipped and abandoned occurrences never
// started, and their records carry the time they were recorded instead.
func ran(r queue.Record) bool {
	return !r.ScheduledAt.IsZero() && r.Status != queue.StatusSkipped && r.Status != queue.StatusAbandoned
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// round shows a duration at a precision a person reads.
func round(d time.Duration) string {
	switch {
	case d < time.Millisecond && d > -time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second && d > -time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// oneLineExcerpt keeps a table row on one line.
func oneLineExcerpt(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 80 {
		s = string(r[:79]) + "…"
	}
	return s
}
