package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
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
	fires := nextFires(job, after, *n)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(fires)
	}
	writeNext(stdout, job, fires)
	return nil
}

// fire is one occurrence as `runner next -json` prints it.
type fire struct {
	// At is when the occurrence starts (its schedule's instant plus its jitter), UTC.
	At time.Time `json:"at"`
	// Scheduled is the schedule's instant, before jitter, UTC.
	Scheduled time.Time `json:"scheduled"`
	// Local is At on the wall clock of the job's zone.
	Local string `json:"local"`
	// Zone is the zone's abbreviation at Scheduled (CET, CEST, …).
	Zone string `json:"zone"`
	// JitterMS is how long the jitter delays the occurrence.
	JitterMS int64 `json:"jitter_ms"`
	// Occurrence is the occurrence's id.
	Occurrence string `json:"occurrence"`
	// DST says how a daylight-saving change touches the scheduled instant: "" (it does not),
	// "at_change" (it is the instant of a change: a wall time in a spring-forward gap that
	// the job shifts comes here), "repeated_first" or "repeated_second" (its wall time occurs
	// twice that day, and this is its first or second instant).
	DST string `json:"dst,omitempty"`
}

// nextFires lists the job's first n fire times strictly after t: instants of its schedule
// plus their jitter, in the order the fleet fires them. With jitter an occurrence of the
// schedule before t may fire after it, and a later one before an earlier one, so the
// search starts a jitter before t and goes on until no later occurrence can fire sooner.
func nextFires(j *config.Job, t time.Time, n int) []fire {
	var out []fire
	for s := t.Add(-j.Jitter); ; {
		s = j.Sched.Next(s)
		if s.IsZero() || len(out) >= n && !s.Before(out[n-1].At) {
			break
		}
		id := cron.OccurrenceID(j.Name, s)
		jit := cron.Jitter(id, j.Jitter)
		at := s.Add(jit).UTC()
		if !at.After(t) {
			continue
		}
		zone, _ := s.In(j.Location).Zone()
		out = append(out, fire{
			At: at, Scheduled: s.UTC(), Local: at.In(j.Location).Format("2006-01-02T15:04:05.000-07:00"),
			Zone: zone, JitterMS: jit.Milliseconds(), Occurrence: id, DST: dstNote(s, j.Location),
		})
		slices.SortStableFunc(out, func(a, b fire) int { return a.At.Compare(b.At) })
		out = out[:min(len(out), n)]
	}
	return out
}

// dstNote says how a daylight-saving change touches the instant s in loc (see fire.DST).
func dstNote(s time.Time, loc *time.Location) string {
	t := s.In(loc)
	start, _ := t.ZoneBounds()
	_, off := t.Zone()
	if !start.IsZero() && t.Equal(start) {
		if _, prev := start.Add(-time.Nanosecond).Zone(); prev < off {
			return "at_change"
		}
	}
	// A wall reading that also occurs an offset's difference earlier or later is repeated.
	for _, d := range []time.Duration{-3 * time.Hour, -2 * time.Hour, -time.Hour, -30 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour} {
		u := t.Add(d)
		_, uoff := u.Zone()
		if uoff != off && u.Unix()+int64(uoff) == t.Unix()+int64(off) {
			if d > 0 {
				return "repeated_first"
			}
			return "repeated_second"
		}
	}
	return ""
}

func writeNext(w io.Writer, j *config.Job, fires []fire) {
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
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AT (UTC)\tLOCAL\tJITTER\tDST")
	for _, f := range fires {
		note := map[string]string{"at_change": "at the change", "repeated_first": "repeated hour, first", "repeated_second": "repeated hour, second"}[f.DST]
		fmt.Fprintf(tw, "%s\t%s %s\t+%s\t%s\n", f.At.Format("2006-01-02 15:04:05.000"), f.At.In(j.Location).Format("2006-01-02 15:04:05"), f.Zone,
			time.Duration(f.JitterMS)*time.Millisecond, note)
	}
	_ = tw.Flush()
	if len(fires) == 0 {
		fmt.Fprintln(w, "(no fire time after that)")
	}
}
