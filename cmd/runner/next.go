package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/fleet"
)

// nextCmd is "runner next -config PATH [-n 10] [-from TIME] [-json] JOB": the next fire times
// of a job, from the job files alone: the same computation as the nodes', jitter included,
// without Redis.
func nextCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("next", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var configs stringList
	fs.Var(&configs, "config", "job file or directory of *.hcl files (repeatable)")
	n := fs.Int("n", 10, "how many fire times")
	from := fs.String("from", "", "list the fire times strictly after this RFC 3339 time (default now)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: runner next -config PATH [-n 10] [-from TIME] [-json] JOB")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 || len(configs) == 0 || *n < 1 {
		fs.Usage()
		return exitError{2}
	}
	after := time.Now()
	if *from != "" {
		t, err := time.Parse(time.RFC3339Nano, *from)
		if err != nil {
			fmt.Fprintf(stderr, "runner next: -from %q is not an RFC 3339 time, such as 2026-03-29T00:00:00Z\n", *from)
			return exitError{2}
		}
		after = t
	}
	cfg, src, diags := config.Load(configs...)
	if diags.HasErrors() {
		_ = src.WriteDiagnostics(stderr, diags)
		return exitError{1}
	}
	job := cfg.Job(fs.Arg(0))
	if job == nil {
		fmt.Fprintf(stderr, "runner next: no job %q in the job files\n", fs.Arg(0))
		return exitError{1}
	}
	fires := fleet.NextFires(job, after, *n)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(fires)
	}
	writeNext(stdout, job, fires)
	return nil
}

func writeNext(w io.Writer, j *config.Job, fires []fleet.Fire) {
	fmt.Fprintf(w, "job %s: ", j.Name)
	var specs []string
	for _, spec := range j.Schedules {
		r, err := cron.Resolve(spec, j.Name)
		if err == nil && r != spec {
			spec = fmt.Sprintf("%s (H: %s)", spec, r)
		}
		specs = append(specs, fmt.Sprintf("%q", spec))
	}
	fmt.Fprintf(w, "schedule %s in %s, dst_gap %s, dst_repeat %s", strings.Join(specs, " + "), j.Timezone, j.DSTGap, j.DSTRepeat)
	if j.Jitter > 0 {
		fmt.Fprintf(w, ", jitter up to %s", j.Jitter)
	}
	if !j.StartAt.IsZero() {
		fmt.Fprintf(w, ", from %s", j.StartAt.Format(time.RFC3339))
	}
	if !j.EndAt.IsZero() {
		fmt.Fprintf(w, ", until %s", j.EndAt.Format(time.RFC3339))
	}
	if j.MaxRuns > 0 {
		fmt.Fprintf(w, ", at most %d runs", j.MaxRuns)
	}
	if len(j.Exclude) > 0 {
		names := make([]string, len(j.Exclude))
		for i, c := range j.Exclude {
			names[i] = fmt.Sprintf("%q", c.Name())
		}
		fmt.Fprintf(w, ", excluding calendar %s", strings.Join(names, ", "))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "AT (UTC)\tLOCAL\tJITTER\tDST"
	if len(j.Exclude) > 0 {
		header += "\tEXCLUDED"
	}
	fmt.Fprintln(tw, header)
	for _, f := range fires {
		note := map[string]string{"at_change": "at the change", "repeated_first": "repeated hour, first", "repeated_second": "repeated hour, second"}[f.DST]
		fmt.Fprintf(tw, "%s\t%s %s\t+%s\t%s", f.At.Format("2006-01-02 15:04:05.000"), f.At.In(j.Location).Format("2006-01-02 15:04:05"), f.Zone,
			time.Duration(f.JitterMS)*time.Millisecond, note)
		if f.Excluded != "" {
			fmt.Fprintf(tw, "\texcluded by %q (%s)", f.Excluded, f.ExcludedDate)
		} else if len(j.Exclude) > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	if len(fires) == 0 {
		fmt.Fprintln(w, "(no fire time after that)")
	}
}
