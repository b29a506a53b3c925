package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleet"
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
	// The job files are needed for the schedule; Redis only to enqueue.
	cfg, ns, err := ff.jobs("backfill", stderr)
	if err != nil {
		return err
	}
	req := fleet.BackfillRequest{From: from, To: to, Limit: *limit, DryRun: *dryRun}
	f := newFleet(nil, cfg, stderr) // a dry run reads no Redis
	if !*dryRun {
		v, err := ff.connect("backfill", stderr, cfg, ns)
		if err != nil {
			return err
		}
		defer v.close()
		f = v.fleet
	}
	res, err := f.Backfill(context.Background(), fs.Arg(0), req, cliActor())
	if err != nil {
		return inputError("backfill", err, stderr)
	}
	if ff.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	for i, id := range res.Occurrences {
		fmt.Fprintf(stdout, "%s  %s\n", res.Due[i].Format("2006-01-02 15:04:05.000"), id)
	}
	switch {
	case len(res.Occurrences) == 0:
		fmt.Fprintf(stdout, "%s has no occurrence in that range\n", res.Job)
	case *dryRun:
		fmt.Fprintf(stdout, "%d occurrences; nothing enqueued (-dry-run)\n", len(res.Occurrences))
	default:
		fmt.Fprintf(stdout, "%d occurrences enqueued, due now\n", res.Enqueued)
	}
	return nil
}
