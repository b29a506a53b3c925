// Package jobgen writes large job files for measuring how the runner loads and starts them.
//
// The jobs look like a big fleet's: most run hourly or daily, some every few minutes, a few
// with @every; a third are read in one of a dozen zones; most are exec handlers, the rest
// http, and some share their settings (the same script run for many tenants) while most
// differ by an argument or a URL. The output is deterministic for a seed, so old and new
// code are measured on the same file.
package jobgen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
)

// Config says what Write writes.
type Config struct {
	// Jobs is how many job blocks to write.
	Jobs int
	// Seed picks the jobs; equal seeds write equal files.
	Seed uint64
	// Namespace is the runner block's namespace; empty for none (no runner block).
	Namespace string
}

var (
	schedules = []string{
		"H * * * *", "H H * * *", "H H * * MON-FRI", "H/15 * * * *", "H/5 * * * *",
		"0 * * * *", "30 2 * * *", "0 0 * * *", "*/10 * * * *", "0 9-17 * * MON-FRI",
		"@hourly", "@daily", "@weekly", "0 0 1 * *", "H H(0-5) * * SUN", "15,45 * * * *",
	}
	everies = []string{"@every 5m", "@every 15m", "@every 1h", "@every 90s"}
	zones   = []string{
		"Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles",
		"America/Sao_Paulo", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney",
		"Africa/Johannesburg", "Asia/Singapore", "Europe/Paris", "America/Chicago",
	}
	teams = []string{"billing", "search", "ingest", "reports", "auth", "mail", "ml", "infra"}
)

// Write writes cfg.Jobs job blocks, and a runner block if cfg.Namespace is set, to w.
func Write(w io.Writer, cfg Config) error {
	bw := bufio.NewWriter(w)
	r := rand.New(rand.NewPCG(cfg.Seed, 0x6a6f6267656e))
	if cfg.Namespace != "" {
		fmt.Fprintf(bw, "runner {\n  namespace = %q\n  lease     = \"30s\"\n}\n\n", cfg.Namespace)
	}
	for i := range cfg.Jobs {
		writeJob(bw, r, i)
	}
	return bw.Flush()
}

func writeJob(w *bufio.Writer, r *rand.Rand, i int) {
	team := teams[r.IntN(len(teams))]
	fmt.Fprintf(w, "job \"%s-%06d\" {\n", team, i)
	switch n := r.IntN(100); {
	case n < 5:
		fmt.Fprintf(w, "  schedule = %q\n", everies[r.IntN(len(everies))])
	case n < 8:
		fmt.Fprintf(w, "  schedule = [%q, %q]\n", "30 2 * * *", "0 12 * * MON-FRI")
	default:
		fmt.Fprintf(w, "  schedule = %q\n", schedules[r.IntN(len(schedules))])
	}
	if r.IntN(3) == 0 {
		fmt.Fprintf(w, "  timezone = %q\n", zones[r.IntN(len(zones))])
	}
	if r.IntN(4) == 0 {
		fmt.Fprintf(w, "  jitter   = \"%ds\"\n", 10*(1+r.IntN(30)))
	}
	if r.IntN(2) == 0 {
		fmt.Fprintf(w, "  timeout  = \"%dm\"\n", 1+r.IntN(60))
	}
	if r.IntN(10) == 0 {
		w.WriteString("  overlap  = \"buffer_one\"\n  catchup  = \"all\"\n  catchup_window = \"6h\"\n")
	}
	if r.IntN(5) == 0 {
		fmt.Fprintf(w, "  retry {\n    attempts = %d\n    backoff  = \"%ds\"\n  }\n", 2+r.IntN(4), 5*(1+r.IntN(12)))
	}
	switch n := r.IntN(100); {
	case n < 30: // the same script for many tenants: identical settings
		fmt.Fprintf(w, "  handler \"exec\" {\n    command = [\"/usr/local/bin/%s-sync\", \"--all\"]\n  }\n", team)
	case n < 65:
		fmt.Fprintf(w, "  handler \"exec\" {\n    command = [\"/usr/local/bin/%s-task\", \"--tenant\", \"t%d\"]\n", team, i)
		if r.IntN(2) == 0 {
			fmt.Fprintf(w, "    env     = { TEAM = %q, LOG_LEVEL = \"info\" }\n", team)
		}
		w.WriteString("  }\n")
	case n < 75:
		fmt.Fprintf(w, "  handler \"exec\" {\n    shell = \"cd /srv/%s && ./run.sh %d >> /var/log/%s.log 2>&1\"\n  }\n", team, i, team)
	default:
		fmt.Fprintf(w, "  handler \"http\" {\n    url     = \"https://%s.internal.example/hooks/%d\"\n    method  = \"POST\"\n", team, i)
		fmt.Fprintf(w, "    headers = { X-Team = upper(%q) }\n", team)
		fmt.Fprintf(w, "    body    = jsonencode({ job = \"%s-%06d\", tenant = %d })\n  }\n", team, i, i)
	}
	w.WriteString("}\n\n")
}
