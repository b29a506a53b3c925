package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// controlCmd is "runner pause [-note TEXT] JOB", "runner resume JOB" and "runner trigger
// JOB": actions on a job that the whole fleet follows, because they are decided in Redis.
func controlCmd(action string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ff fleetFlags
	ff.register(fs)
	var note *string
	usage := "usage: runner " + action + " [-config PATH] [-redis URL] [-namespace NS] [-json] JOB"
	if action == "pause" {
		note = fs.String("note", "", "why the job is paused, recorded with the pause")
		usage = "usage: runner pause [-config PATH] [-redis URL] [-namespace NS] [-note TEXT] [-json] JOB"
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{2}
	}
	job := fs.Arg(0)
	v, err := ff.open(action, stderr)
	if err != nil {
		return err
	}
	defer v.close()
	if v.cfg != nil && v.cfg.Job(job) == nil {
		fmt.Fprintf(stderr, "runner %s: no job %q in the job files\n", action, job)
		return exitError{1}
	}
	ctx := context.Background()
	var res controlResult
	switch action {
	case "pause":
		p := queue.Pause{Note: strings.Join(strings.Fields(*note), " "), By: whoami(), At: time.Now().UTC().Truncate(time.Second)}
		if err := v.queue.Pause(ctx, job, p); err != nil {
			return err
		}
		res = controlResult{Job: job, Action: "paused", Pause: &p}
	case "resume":
		was, err := v.queue.Resume(ctx, job)
		if err != nil {
			return err
		}
		res = controlResult{Job: job, Action: "resumed", WasPaused: &was}
	case "trigger":
		id := cron.TriggeredID(job, time.Now(), strings.ToLower(rand.Text()[:8]))
		if _, err := v.queue.Trigger(ctx, job, id); err != nil {
			return err
		}
		res = controlResult{Job: job, Action: "triggered", Occurrence: id}
	}
	if ff.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	switch {
	case res.Pause != nil:
		fmt.Fprintf(stdout, "%s: paused fleet-wide by %s at %s", job, res.Pause.By, res.Pause.At.Format(time.RFC3339))
		if res.Pause.Note != "" {
			fmt.Fprintf(stdout, ": %s", res.Pause.Note)
		}
		fmt.Fprintln(stdout)
	case res.WasPaused != nil && *res.WasPaused:
		fmt.Fprintf(stdout, "%s: resumed\n", job)
	case res.WasPaused != nil:
		fmt.Fprintf(stdout, "%s: was not paused\n", job)
	default:
		fmt.Fprintf(stdout, "%s: triggered %s, due now\n", job, res.Occurrence)
	}
	return nil
}

// controlResult is what an action prints with -json.
type controlResult struct {
	// Job is the job acted on.
	Job string `json:"job"`
	// Action is "paused", "resumed" or "triggered".
	Action string `json:"action"`
	// Pause is the pause recorded, for pause.
	Pause *queue.Pause `json:"pause,omitempty"`
	// WasPaused says, for resume, whether the job was paused.
	WasPaused *bool `json:"was_paused,omitempty"`
	// Occurrence is the id of the occurrence added, for trigger.
	Occurrence string `json:"occurrence,omitempty"`
}

// whoami names who acts, as user@host, for the record.
func whoami() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		return name
	}
	return name + "@" + host
}
