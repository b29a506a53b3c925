package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
)

// backfillCmd is "runner backfill -from TIME -to TIME [-limit 100] [-dry-run] JOB": the
// occurrences that a job's schedule had in a past range, run again now, for when the job
// was broken.
func backfillCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ff fleetFlags
	ff.register(fs)
	fromFlag := fs.String("from", "", "the range's start, RFC 3339 (exclusive)")
	toFlag := fs.String("to", "", "the range's end, RFC 3339 (inclusive), not in the future")
	limit := fs.Int("limit", 100, "refuse a range with more occurrences than this")
	dryRun := fs.Bool("dry-run", false, "list the occurrences, enqueue nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: runner backfill -config PATH [-redis URL] -from TIME -to TIME [-limit 100] [-dry-run] [-json] JOB")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 || len(ff.configs) == 0 || *limit < 1 {
		fs.Usage()
		return exitError{2}
	}
	from, err := time.Parse(time.RFC3339Nano, *fromFlag)
	if err != nil {
		fmt.Fprintf(stderr, "runner backfill: -from %q is not an RFC 3339 time, such as 2026-03-01T00:00:00Z\n", *fromFlag)
		return exitError{2}
	}
	to, err := time.Parse(time.RFC3339Nano, *toFlag)
	if err != nil {
		fmt.Fprintf(stderr, "runner backfill: -to %q is not an RFC 3339 time, such as 2026-03-02T00:00:00Z\n", *toFlag)
		return exitError{2}
	}
	switch {
	case !to.After(from):
		fmt.Fprintf(stderr, "runner backfill: -to %s is not after -from %s\n", *toFlag, *fromFlag)
		return exitError{2}
	case to.After(time.Now()):
		fmt.Fprintf(stderr, "runner backfill: -to %s is in the future: backfill is for a past range; the fleet runs the future by itself\n", *toFlag)
		return exitError{2}
	}
	// The job files are needed for the schedule; Redis only to enqueue.
	cfg, ns, err := ff.jobs("backfill", stderr)
	if err != nil {
		return err
	}
	job := cfg.Job(fs.Arg(0))
	if job == nil {
		fmt.Fprintf(stderr, "runner backfill: no job %q in the job files\n", fs.Arg(0))
		return exitError{1}
	}
	due := cron.Expand(job.Sched, from, to, *limit+1)
	if len(due) > *limit {
		fmt.Fprintf(stderr, "runner backfill: the range has more than %d occurrences of %s; narrow it or raise -limit\n", *limit, job.Name)
		return exitError{1}
	}
	// One nonce for the call: each backfill is its own set of occurrences, and a call the
	// Redis client re-sends adds none twice.
	nonce := strings.ToLower(rand.Text()[:8])
	ids := make([]string, len(due))
	for i, d := range due {
		ids[i] = cron.TriggeredID(job.Name, d, nonce)
	}
	res := backfillResult{Job: job.Name, DryRun: *dryRun, Occurrences: ids}
	if !*dryRun && len(ids) > 0 {
		v, err := ff.connect("backfill", stderr, cfg, ns)
		if err != nil {
			return err
		}
		defer v.close()
		if res.Enqueued, err = v.queue.Trigger(context.Background(), job.Name, ids...); err != nil {
			return err
		}
	}
	if ff.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	for i, id := range ids {
		fmt.Fprintf(stdout, "%s  %s\n", due[i].UTC().Format("2006-01-02 15:04:05.000"), id)
	}
	switch {
	case len(ids) == 0:
		fmt.Fprintf(stdout, "%s has no occurrence in that range\n", job.Name)
	case *dryRun:
		fmt.Fprintf(stdout, "%d occurrences; nothing enqueued (-dry-run)\n", len(ids))
	default:
		fmt.Fprintf(stdout, "%d occurrences enqueued, due now\n", res.Enqueued)
	}
	return nil
}

// backfillResult is what `runner backfill -json` prints.
type backfillResult struct {
	// Job is the job backfilled.
	Job string `json:"job"`
	// DryRun says nothing was enqueued.
	DryRun bool `json:"dry_run"`
	// Occurrences are the ids of the occurrences of the range, oldest first.
	Occurrences []string `json:"occurrences"`
	// Enqueued is how many were added to the agenda.
	Enqueued int `json:"enqueued"`
}
