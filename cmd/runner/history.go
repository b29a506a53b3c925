package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/cronfleet/cronfleet/internal/fleet"
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
	runs, err := v.fleet.History(context.Background(), job, *n)
	if err != nil {
		return inputError("history", err, stderr)
	}
	if ff.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(runs)
	}
	writeHistoryTable(stdout, runs)
	return nil
}

func writeHistoryTable(w io.Writer, recs []fleet.Run) {
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
		if r.LatenessMS != nil {
			late, dur = fleet.FormatDuration(r.StartedAt.Sub(r.ScheduledAt)), fleet.FormatDuration(r.EndedAt.Sub(r.StartedAt))
		}
		at := r.ScheduledAt.UTC().Format("2006-01-02 15:04:05.000")
		if r.Part != nil {
			at += fmt.Sprintf(" part %d/%d", *r.Part, r.Parts) // its index, from 0, of the count
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", at, r.Status,
			r.Node, r.Attempt, r.FencingToken, late, dur, oneLineExcerpt(out))
	}
	_ = tw.Flush()
	if len(recs) == 0 {
		fmt.Fprintln(w, "(no runs recorded)")
	}
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
