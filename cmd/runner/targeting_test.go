package main_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// targetingConstraints are the constraint blocks of job-000…, by the job's index modulo
// their count, with the nodes of TestTargeting each allows.
var targetingConstraints = []struct {
	block string
	nodes []string
}{
	{`constraint {
    label = "region"
    value = "eu"
  }`, []string{"eu-1", "eu-2"}},
	{`constraint {
    label = "region"
    value = "us"
  }`, []string{"us-1"}},
	{`constraint {
    label    = "region"
    operator = "!="
    value    = "eu"
  }`, []string{"us-1"}},
	{`constraint {
    label    = "tier"
    operator = "in"
    value    = ["gold", "platinum"]
  }`, []string{"eu-1"}},
	{`constraint {
    label = "node"
    value = "eu-2"
  }`, []string{"eu-2"}},
}

// targetingJobs is a job file of n jobs job-000… every second, each with the constraint of
// its index (targetingConstraints), and the job "apac", every second, which only a node
// labelled region=apac may run, with the default catch-up (latest) and overlap (skip)
// policies: what waited for a node runs all the same, in turn.
func targetingJobs(n int) func(runs string) string {
	return func(runs string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "runner {\n  namespace = \"e2e\"\n  lease = \"5s\"\n}\n")
		cmd := fleettest.RecordCommand(runs, 0)
		handler := fmt.Sprintf("  handler \"exec\" {\n    command = [%q, %q, %q]\n    env = { RUNS = %q }\n  }\n", cmd[0], cmd[1], cmd[2], runs)
		for i := range n {
			fmt.Fprintf(&b, "job \"job-%03d\" {\n  schedule = \"* * * * * *\"\n  %s\n%s}\n", i, targetingConstraints[i%len(targetingConstraints)].block, handler)
		}
		fmt.Fprintf(&b, "job \"apac\" {\n  schedule = \"* * * * * *\"\n  constraint {\n    label = \"region\"\n    value = \"apac\"\n  }\n%s}\n", handler)
		return b.String()
	}
}

// TestTargeting: three labelled nodes run 50 constrained jobs every second; over 20 seconds
// each of the 1,000 occurrences runs once, on a node its constraints allow. The occurrences
// of a job that no live node may run are reported (history, runner status, the fleet's
// metric) and not run; when a node that may run them starts, each runs there, once.
func TestTargeting(t *testing.T) {
	t.Parallel()
	const jobs = 50
	f := newFleet(t, targetingJobs(jobs))
	base := f.startWithHTTP("eu-1", "-label", "region=eu", "-label", "tier=gold")
	f.start("eu-2", "-label", "region=eu", "-label", "tier=silver")
	f.start("us-1", "-label", "region=us")
	from := time.Now().Add(3 * time.Second).Truncate(time.Second)
	to := from.Add(19 * time.Second)
	f.waitAllStarted(jobs, from, to, 60*time.Second)

	ev := f.events()
	checkHealthyRuns(t, ev, jobs, from, to, false)
	var n int
	for _, e := range ev {
		if e.Kind != "start" {
			continue
		}
		job, due := dueOf(t, e.Occurrence)
		if job == "apac" {
			t.Errorf("%s ran on %s, which is not labelled region=apac", e.Occurrence, e.Node)
			continue
		}
		var i int
		if _, err := fmt.Sscanf(job, "job-%03d", &i); err != nil {
			t.Fatalf("unexpected job %s", job)
		}
		if allowed := targetingConstraints[i%len(targetingConstraints)].nodes; !slices.Contains(allowed, e.Node) {
			t.Errorf("%s ran on %s; its constraint allows only %v", e.Occurrence, e.Node, allowed)
		}
		if !due.Before(from) && !due.After(to) {
			n++
		}
	}
	if n != jobs*20 {
		t.Errorf("%d runs in the window, want %d", n, jobs*20)
	}

	// apac waits: recorded unplaced, shown by runner status and the fleet's metric.
	unplaced := map[string]bool{}
	for _, r := range f.history("e2e", "apac") {
		if r.Status != queue.StatusUnplaced {
			t.Fatalf("apac recorded %s for %s before a node could run it: %s", r.Status, r.Occurrence, r.Error)
		}
		if !strings.Contains(r.Error, "region = apac") {
			t.Errorf("the unplaced record of %s says %q, not naming the constraint", r.Occurrence, r.Error)
		}
		unplaced[r.Occurrence] = true
	}
	if len(unplaced) < 15 {
		t.Fatalf("%d apac occurrences recorded unplaced in over 20 seconds, want one a second", len(unplaced))
	}
	status := f.runCLI("status", "-redis", f.url, "-config", f.conf)
	if !strings.Contains(status, "UNPLACED") || !strings.Contains(status, "apac: ") || !strings.Contains(status, "for a node with region = apac") {
		t.Errorf("runner status does not show apac waiting:\n%s", status)
	}
	if !strings.Contains(status, "region=eu,tier=gold") {
		t.Errorf("runner status does not show eu-1's labels:\n%s", status)
	}
	if got := unplacedGauge(t, base, "apac"); got < 15 {
		t.Errorf("cronfleet_agenda_unplaced_occurrences_by_job{job=\"apac\"} = %v, want what waits", got)
	}

	// A node that may run apac starts: every waiting occurrence runs there, once.
	f.start("apac-1", "-label", "region=apac")
	testwait.For(t, 30*time.Second, "every unplaced apac occurrence to run", func() bool {
		started := starts(f.events())
		for occ := range unplaced {
			if len(started[occ]) == 0 {
				return false
			}
		}
		return true
	})
	started := starts(f.events())
	for occ := range unplaced {
		if ss := started[occ]; len(ss) != 1 || ss[0].Node != "apac-1" {
			t.Errorf("%s started %d times, first on %v; want once, on apac-1", occ, len(ss), ss)
		}
	}
	testwait.For(t, 15*time.Second, "nothing unplaced once apac-1 runs", func() bool { return unplacedGauge(t, base, "apac") == 0 })
}

// unplacedGauge is the fleet's count of job's occurrences that wait for a node, as a node
// serves it at /metrics.
func unplacedGauge(t *testing.T, base, job string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	if _, ok := fams["cronfleet_agenda_unplaced_occurrences"]; !ok {
		t.Fatal("/metrics serves no cronfleet_agenda_unplaced_occurrences")
	}
	for _, m := range fams["cronfleet_agenda_unplaced_occurrences_by_job"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "job" && l.GetValue() == job {
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
