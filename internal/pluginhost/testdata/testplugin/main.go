// Command testplugin is a misbehaving plugin for pluginhost's tests. Its
// settings pick what a run does: {"mode": "ok" | "log" | "env" | "exit" | "panic" |
// "block" | "ignore" | "permanent"}; "ignore" ignores cancellation until the
// SDK's watchdog (a 300ms cancel grace here) ends the process. The shutdown
// grace is 300ms, or TESTPLUGIN_SHUTDOWN_GRACE (a duration) to hold a dying
// process open longer.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/cronfleet/cronfleet/plugin/sdk"
)

func main() {
	grace := 300 * time.Millisecond
	if d, err := time.ParseDuration(os.Getenv("TESTPLUGIN_SHUTDOWN_GRACE")); err == nil {
		grace = d
	}
	schema := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "mode", Type: sdk.TypeString, Required: true, Description: "What the run does."},
	}}
	sdk.Serve(sdk.Func(schema, func(ctx context.Context, run *sdk.Run) (*sdk.Result, error) {
		var s struct {
			Mode string `json:"mode"`
		}
		if err := run.Decode(&s); err != nil {
			return nil, err
		}
		pid := map[string]string{"pid": strconv.Itoa(os.Getpid())}
		switch s.Mode {
		case "ok":
			return &sdk.Result{Message: "ok", Metadata: pid}, nil
		case "echo":
			return &sdk.Result{Metadata: map[string]string{
				"job": run.Job, "scheduled_at": run.ScheduledAt.Format(time.RFC3339Nano),
				"attempt": strconv.Itoa(run.Attempt), "fencing_token": strconv.FormatInt(run.FencingToken, 10),
				"occurrence_id": run.OccurrenceID, "node": run.Node, "stop_within": run.StopWithin.String(),
			}}, nil
		case "log":
			run.Logger().Info("hello from the plugin", "answer", 42)
			return &sdk.Result{Metadata: pid}, nil
		case "env":
			for _, kv := range os.Environ() {
				fmt.Fprintln(run.Output(), kv)
			}
			return &sdk.Result{Metadata: pid}, nil
		case "exit":
			fmt.Fprintln(run.Output(), "about to exit")
			os.Exit(3)
		case "panic":
			fmt.Fprintln(run.Output(), "about to panic")
			go func() { // outside the SDK's recover: the process dies
				panic("testplugin: boom")
			}()
			select {} // never returns: a deferred close here would let the run answer before the crash
		case "block":
			fmt.Fprintln(run.Output(), "blocking")
			<-ctx.Done()
			return nil, ctx.Err()
		case "ignore":
			fmt.Fprintln(run.Output(), os.Getpid())
			select {} // the watchdog exits the process
		case "permanent":
			return nil, sdk.Permanent(errors.New("never works"))
		}
		return nil, fmt.Errorf("unknown mode %q", s.Mode)
	}), sdk.WithCancelGrace(300*time.Millisecond), sdk.WithShutdownGrace(grace))
}
