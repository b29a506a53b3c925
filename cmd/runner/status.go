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

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/queue"
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
	st, err := readStatus(context.Background(), v)
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

// fleetStatus is what `runner status -json` prints.
type fleetStatus struct {
	// Nodes are the nodes that announced themselves, by name.
	Nodes []nodeStatus `json:"nodes"`
	// Drift is true when the live nodes run different job sets (their job_set_hash differ).
	Drift bool `json:"drift"`
	// Jobs are the jobs of the job files, by name; absent without -config.
	Jobs []jobStatus `json:"jobs,omitempty"`
}

// nodeStatus is one node of the fleet.
type nodeStatus struct {
	queue.NodeSeen
	// Alive is whether Redis heard from the node within queue.NodeTTL.
	Alive bool `json:"alive"`
}

// jobStatus is one job as the fleet sees it.
type jobStatus struct {
	Name     string `json:"name"`
	Schedule string `json:"schedule"`
	Timezone string `json:"timezone"`
	// Next is the job's next fire after now, by this machine's clock; absent if none.
	Next *time.Time `json:"next,omitempty"`
	// Last is the job's latest run record; absent if none.
	Last *queue.Record `json:"last,omitempty"`
	// Paused is the job's fleet-wide pause; absent if not paused.
	Paused *queue.Pause `json:"paused,omitempty"`
}

func readStatus(ctx context.Context, v *fleetView) (*fleetStatus, error) {
	nodes, err := v.queue.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	st := &fleetStatus{Nodes: []nodeStatus{}}
	hashes := map[string]bool{}
	for _, n := range nodes {
		alive := n.Age <= queue.NodeTTL
		st.Nodes = append(st.Nodes, nodeStatus{NodeSeen: n, Alive: alive})
		if alive {
			hashes[n.JobSetHash] = true
		}
	}
	slices.SortFunc(st.Nodes, func(a, b nodeStatus) int { return strings.Compare(a.Name, b.Name) })
	st.Drift = len(hashes) > 1
	if v.cfg == nil {
		return st, nil
	}
	names := make([]string, len(v.cfg.Jobs))
	for i, j := range v.cfg.Jobs {
		names[i] = j.Name
	}
	pauses, err := v.queue.Pauses(ctx, names)
	if err != nil {
		return nil, err
	}
	last, err := v.queue.LastRuns(ctx, names)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, j := range v.cfg.Jobs {
		js := jobStatus{Name: j.Name, Schedule: j.Schedule, Timezone: zoneName(j)}
		if next := j.Sched.Next(now); !next.IsZero() {
			next = next.UTC()
			js.Next = &next
		}
		if r, ok := last[j.Name]; ok {
			js.Last = &r
		}
		if p, ok := pauses[j.Name]; ok {
			js.Paused = &p
		}
		st.Jobs = append(st.Jobs, js)
	}
	slices.SortFunc(st.Jobs, func(a, b jobStatus) int { return strings.Compare(a.Name, b.Name) })
	return st, nil
}

func zoneName(j *config.Job) string {
	if j.Timezone == "" {
		return "UTC"
	}
	return j.Timezone
}

func writeStatus(w io.Writer, st *fleetStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tALIVE\tLAST SEEN\tVERSION\tJOBS\tJOB SET")
	for _, n := range st.Nodes {
		alive := "yes"
		if !n.Alive {
			alive = "no"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\t%d\t%s\n", n.Name, alive, n.Age.Round(100*time.Millisecond), n.Version, n.Jobs, shortHash(n.JobSetHash))
	}
	_ = tw.Flush()
	if len(st.Nodes) == 0 {
		fmt.Fprintln(w, "(no node has announced itself)")
	}
	if st.Drift {
		fmt.Fprintln(w, "DRIFT: the live nodes run different job sets (see JOB SET)")
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
