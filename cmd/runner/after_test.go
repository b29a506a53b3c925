package main_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// Dependencies end to end: three real runner processes on one real Redis; every handler
// appends "JOB OCCURRENCE UPSTREAM" to a file, counted per occurrence.

// depJob is a job whose exec handler appends its line to file after sleeping sleep, and
// fails when fail, a shell condition, holds; body adds to the job block.
func depJob(name, file, sleep, fail, body string) string {
	script := fmt.Sprintf(`sleep %s; echo "$CRONFLEET_JOB $CRONFLEET_OCCURRENCE_ID ${CRONFLEET_UPSTREAM_OCCURRENCE:--}" >> "$DEPS"; ! { %s; }`, sleep, fail)
	return fmt.Sprintf("job %q {\n%s  handler \"exec\" {\n    command = [\"sh\", \"-c\", %q]\n    env     = { DEPS = %q }\n  }\n}\n",
		name, body, strings.ReplaceAll(script, "${", "$${"), file) // HCL would interpolate ${
}

type depLine struct{ job, occ, upstream string }

// depLines reads the handlers' lines (a last line without its newline is being written).
func depLines(t *testing.T, file string) []depLine {
	t.Helper()
	var out []depLine
	for _, fs := range handlerLines(t, file, 3) {
		out = append(out, depLine{fs[0], fs[1], fs[2]})
	}
	return out
}

// TestDependencies: a succeeds on even seconds and fails on odd ones; b runs after a on
// success and c on failure, each exactly once per occurrence of a and never for the other
// outcome, told a's id; d runs after a and e (both on success) once per instant at which
// both succeeded, only after both ended, told both ids, and is recorded skipped at the
// instants where a failed.
func TestDependencies(t *testing.T) {
	t.Parallel()
	const runs = 6
	// Both upstreams start at one instant a little ahead, so that their instants pair up
	// whichever node expands them first.
	start := time.Now().Add(8 * time.Second).Truncate(time.Second).UTC()
	var deps string
	f := newFleet(t, func(runsFile string) string {
		deps = filepath.Join(filepath.Dir(runsFile), "deps.log")
		odd := `test $(expr $(echo "$CRONFLEET_SCHEDULED_AT" | cut -c18-19) % 2) -eq 1`
		upstream := fmt.Sprintf("  schedule = \"* * * * * *\"\n  start_at = %q\n  max_runs = %d\n  overlap  = \"allow\"\n  retry {\n    attempts = 1\n  }\n",
			start.Format(time.RFC3339), runs)
		return "runner {\n  namespace = \"e2e\"\n  lease     = \"2s\"\n}\n" +
			depJob("a", deps, "0", odd, upstream) +
			// e ends well after a, so that d visibly waits for it.
			depJob("e", deps, "1.5", "false", upstream) +
			depJob("b", deps, "0", "false", "  after \"a\" {}\n") +
			depJob("c", deps, "0", "false", "  after \"a\" {\n    on = \"failure\"\n  }\n") +
			depJob("d", deps, "0", "false", "  after \"a\" {}\n  after \"e\" {\n    on = \"success\"\n  }\n")
	})
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}

	ended := func(job string) map[string]queue.Record {
		out := map[string]queue.Record{}
		for _, r := range f.history("e2e", job) {
			if r.Status != queue.StatusRetrying {
				out[r.Occurrence] = r
			}
		}
		return out
	}
	testwait.For(t, 60*time.Second, "every run of a and e, and what runs after them, ended", func() bool {
		a, e := ended("a"), ended("e")
		if len(a) < runs || len(e) < runs {
			return false
		}
		// One of b and c per run of a, and one of d per instant.
		return len(ended("b"))+len(ended("c")) == runs && len(ended("d")) == runs
	})

	a, e, b, c, d := ended("a"), ended("e"), ended("b"), ended("c"), ended("d")
	count := map[string]int{}
	upstream := map[string]string{}
	for _, l := range depLines(t, deps) {
		count[l.occ]++
		upstream[l.occ] = l.upstream
	}
	for occ, r := range a {
		_, due := dueOf(t, occ)
		wantOK := due.Second()%2 == 0
		if ok := r.Status == queue.StatusSucceeded; ok != wantOK {
			t.Errorf("%s: %s, want success %v", occ, r.Status, wantOK)
		}
		bocc, cocc := cron.DependentID("b", occ), cron.DependentID("c", occ)
		run, not := bocc, cocc
		if !wantOK {
			run, not = cocc, bocc
		}
		if count[run] != 1 || upstream[run] != occ {
			t.Errorf("%s ran %d times with upstream %q, want once after %s", run, count[run], upstream[run], occ)
		}
		if count[not] != 0 {
			t.Errorf("%s ran %d times, though %s ended %s", not, count[not], occ, r.Status)
		}
		rec, ok := b[run]
		if !wantOK {
			rec, ok = c[run]
		}
		if !ok || rec.Status != queue.StatusSucceeded || !slices.Equal(rec.Upstream, []string{occ}) {
			t.Errorf("record of %s: %+v, want succeeded with upstream %s", run, rec, occ)
		}

		// The fan-in.
		eocc := cron.OccurrenceID("e", due)
		er, ok := e[eocc]
		if !ok || er.Status != queue.StatusSucceeded {
			t.Fatalf("%s: %+v, want succeeded", eocc, er)
		}
		docc := cron.DependentID("d", occ)
		dr := d[docc]
		if !wantOK {
			if count[docc] != 0 || dr.Status != queue.StatusSkipped || !slices.Equal(dr.Upstream, []string{occ, eocc}) {
				t.Errorf("%s ran %d times, record %+v; want it skipped, naming %s and %s", docc, count[docc], dr, occ, eocc)
			}
			continue
		}
		if want := occ + "," + eocc; count[docc] != 1 || upstream[docc] != want {
			t.Errorf("%s ran %d times with upstream %q, want once after %s", docc, count[docc], upstream[docc], want)
		}
		if dr.Status != queue.StatusSucceeded || dr.StartedAt.Before(er.EndedAt) || dr.StartedAt.Before(r.EndedAt) {
			t.Errorf("%s: %s, started %v; want succeeded, after %s ended %v and %s ended %v",
				docc, dr.Status, dr.StartedAt, occ, r.EndedAt, eocc, er.EndedAt)
		}
	}
	for occ, n := range count {
		if job, _ := dueOf(t, occ); job != "a" && job != "e" && !cron.IsDependent(occ) {
			t.Errorf("%s (%s) ran %d times: not a run after others", occ, job, n)
		}
	}
}
