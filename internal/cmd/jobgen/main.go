// Command jobgen writes a job file of many realistic jobs, for measuring how the runner
// validates and starts large job sets (see docs/benchmarks.md).
//
//	go run ./internal/cmd/jobgen [-jobs 100000] [-seed 1] [-namespace bench] > jobs.hcl
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/cronfleet/cronfleet/internal/jobgen"
)

func main() {
	fs := flag.NewFlagSet("jobgen", flag.ExitOnError)
	jobs := fs.Int("jobs", 100000, "number of jobs")
	seed := fs.Uint64("seed", 1, "picks the jobs; equal seeds write equal files")
	ns := fs.String("namespace", "bench", "the runner block's namespace; empty for no runner block")
	_ = fs.Parse(os.Args[1:])
	if err := jobgen.Write(os.Stdout, jobgen.Config{Jobs: *jobs, Seed: *seed, Namespace: *ns}); err != nil {
		fmt.Fprintf(os.Stderr, "jobgen: %v\n", err)
		os.Exit(1)
	}
}
