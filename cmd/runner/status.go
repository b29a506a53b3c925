package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/fleet"
)

// statusCmd is "runner status [-json]": the fleet's nodes, and each job's next fire, last
// result and pause.
func statusCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ff fleetFlags
	ff.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: runner status [-config PATH] [-redis URL] [-namespace NS] [-json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitError{2}
	}
	v, err := ff.open("status", stderr)
	if err != nil {
		return err
	}
	defer v.close()
	st, err := v.fleet.Status(context.Background())
	if err != nil {
		return err
	}
	if ff.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	writeStatus(stdout, st)
	return nil
}

func writeStatus(w io.Writer, st *fleet.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tALIVE\tLAST SEEN\tVERSION\tJOBS\tJOB SET\tLABELS")
	for _, n := range st.Nodes {
		alive := "yes"
		if !n.Alive {
			alive = "no"
		}
		// The built-in label is the name, in the first column already.
		labels := maps.Clone(n.Labels)
		delete(labels, config.NodeLabel)
		set := shortHash(n.JobSetHash)
		if n.Drifted {
			set += " (differs)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\t%d\t%s\t%s\n", n.Name, alive, n.Age.Round(100*time.Millisecond), n.Version, n.Jobs, set, cmp.Or(labelText(labels), "-"))
	}
	_ = tw.Flush()
	if len(st.Nodes) == 0 {
		fmt.Fprintln(w, "(no node has announced itself)")
	}
	if st.Drift {
		fmt.Fprintln(w, "DRIFT: the live nodes run different job sets (see JOB SET: \"differs\" marks a node not running the set most live nodes run)")
	}
	if len(st.Backlog) > 0 {
		// Highest priority first: the order in which the fleet claims them.
		ps := slices.Sorted(maps.Keys(st.Backlog))
		slices.Reverse(ps)
		fmt.Fprint(w, "BACKLOG (due, not started) BY PRIORITY:")
		for _, p := range ps {
			fmt.Fprintf(w, " %d: %d", p, st.Backlog[p])
		}
		fmt.Fprintln(w)
	}
	if len(st.Unplaced) > 0 {
		fmt.Fprintln(w, "UNPLACED (due, but no live node may run them; they wait for one within their catch-up window):")
		for _, u := range st.Unplaced {
			fmt.Fprintf(w, "  %s: %d waiting", u.Job, u.Waiting)
			if u.Constraints != "" {
				fmt.Fprintf(w, ", for a node with %s", u.Constraints)
			}
			fmt.Fprintln(w)
		}
	}
	if st.Jobs == nil {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSCHEDULE\tZONE\tNEXT (UTC)\tLAST\tPAUSED")
	for _, j := range st.Jobs {
		next, last, paused := "-", "-", "no"
		if j.Next != nil {
			next = j.Next.Format("2006-01-02 15:04:05")
		}
		if j.Last != nil {
			last = fmt.Sprintf("%s %s", j.Last.Status, j.Last.ScheduledAt.UTC().Format("2006-01-02 15:04:05"))
		}
		if j.Paused != nil {
			paused = "yes, by " + j.Paused.By
			if j.Paused.Note != "" {
				paused += ": " + oneLineExcerpt(j.Paused.Note)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, j.Schedule, j.Timezone, next, last, paused)
	}
	_ = tw.Flush()
}

// shortHash is enough of a hash to tell job sets apart by eye.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
