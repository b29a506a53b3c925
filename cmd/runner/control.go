package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleet"
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
	ctx := context.Background()
	var res *fleet.Action
	switch action {
	case "pause":
		res, err = v.fleet.Pause(ctx, job, *note, cliActor())
	case "resume":
		res, err = v.fleet.Resume(ctx, job, cliActor())
	case "trigger":
		res, err = v.fleet.Trigger(ctx, job, cliActor())
	}
	if err != nil {
		return inputError(action, err, stderr)
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
