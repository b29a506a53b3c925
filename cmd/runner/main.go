// Command runner is a cronfleet node. Run the same binary on every host of a fleet; the nodes
// share one schedule through Redis, with no leader.
//
//	runner run -config jobs.hcl [-config more.hcl…] [-redis URL] [-node NAME] [-plugin-dir DIR]
//	runner validate [-plugin-dir DIR] PATH…
//	runner next -config PATH [-n 10] [-from TIME] [-json] JOB
//	runner status [-config PATH] [-redis URL] [-json]
//	runner history [-config PATH] [-redis URL] [-n 20] [-json] JOB
//	runner pause [-config PATH] [-redis URL] [-note TEXT] JOB
//	runner resume [-config PATH] [-redis URL] JOB
//	runner trigger [-config PATH] [-redis URL] JOB
//	runner backfill -config PATH [-redis URL] -from TIME -to TIME [-limit 100] [-dry-run] JOB
//	runner plugin check [flags] PATH|BUILTIN
//	runner plugin serve NAME     (internal: serves a built-in handler plugin)
//
// main only picks the subcommand, runs it, prints its error and sets the exit code; each
// subcommand builds its own flag set and wires its components.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/gctune"
	"github.com/cronfleet/cronfleet/internal/redisconn"
)

func main() {
	gctune.Apply() // the node, and the built-in plugins it re-executes
	// go-redis' own lines (a dial failure each) stay out of a command's output; a node
	// sends them to its log (runNode).
	redis.SetLogger(redisconn.Logger{Log: slog.New(slog.DiscardHandler)})
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries an exit code for errors already reported to the user.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

const usage = `usage:
  runner run -config PATH [-config PATH…] [-redis URL] [-node NAME] [-plugin-dir DIR]
  runner validate [-plugin-dir DIR] PATH…
  runner next -config PATH [-n 10] [-from TIME] [-json] JOB
  runner status [-config PATH] [-redis URL] [-json]
  runner history [-config PATH] [-redis URL] [-n 20] [-json] JOB
  runner pause [-config PATH] [-redis URL] [-note TEXT] JOB
  runner resume [-config PATH] [-redis URL] JOB
  runner trigger [-config PATH] [-redis URL] JOB
  runner backfill -config PATH [-redis URL] -from TIME -to TIME [-limit 100] [-dry-run] JOB
  runner plugin check [flags] PATH|BUILTIN
  runner plugin serve NAME

Run "runner SUBCOMMAND -h" for a subcommand's flags.
`

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = runNode(args[1:], stderr)
	case "validate":
		err = validate(args[1:], stdout, stderr)
	case "plugin":
		err = pluginCmd(args[1:], stdout, stderr)
	case "history":
		err = historyCmd(args[1:], stdout, stderr)
	case "next":
		err = nextCmd(args[1:], stdout, stderr)
	case "status":
		err = statusCmd(args[1:], stdout, stderr)
	case "backfill":
		err = backfillCmd(args[1:], stdout, stderr)
	case "pause", "resume", "trigger":
		err = controlCmd(args[0], args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "runner: unknown subcommand %q\n\n%s", args[0], usage)
		return 2
	}
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "runner: %v\n", err)
		return 1
	}
}
