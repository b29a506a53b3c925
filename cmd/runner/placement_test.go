package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleettest"
)

// Placement, end to end: real runner processes on one real Redis share what is due by the
// nodes' capacities, by their fair shares and by the jobs' max_concurrent. How many ran at
// once is counted from the handlers' own start and end lines, in the order they were
// appended to the runs file: a handler's lines fall inside the span in which its node
// counts the run, so what the file shows at once is never more than the nodes had going.

// placementJobs is a job file of n jobs named job-000…, each on schedule, whose handler
// runs for sleep, under a runner block with the given extra settings, and each job with
// the extra job settings.
func placementJobs(n int, schedule string, sleep time.Duration, runnerExtra, jobExtra string) func(runs string) string {
	return recordJobFile(n, schedule, sleep, 5*time.Second, runnerExtra, jobExtra)
}

// atOnce returns the most runs that were going at once, per node, per job and in the
// whole fleet, replaying the start and end lines in file order.
func atOnce(ev []fleettest.Event) (perNode, perJob map[string]int, fleet int) {
	perNode, perJob = map[string]int{}, map[string]int{}
	nodeNow, jobNow, fleetNow := map[string]int{}, map[string]int{}, 0
	for _, e := range ev {
		job, _, _ := strings.Cut(e.Occurrence, "@")
		d := 1
		if e.Kind == "end" {
			d = -1
		}
		nodeNow[e.Node] += d
		jobNow[job] += d
		fleetNow += d
		perNode[e.Node] = max(perNode[e.Node], nodeNow[e.Node])
		perJob[job] = max(perJob[job], jobNow[job])
		fleet = max(fleet, fleetNow)
	}
	return perNode, perJob, fleet
}

// burstAt is a six-field cron expression due once a day, at t (UTC, the jobs' default zone).
func burstAt(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%d %d %d * * *", t.Second(), t.Minute(), t.Hour())
}

// TestNodeCapacity: with a capacity of 4 per node (the runner block's concurrency), three
// nodes and a burst of 100 half-second runs due at one instant, no node ever has more than
// 4 going and the fleet never more than 12, and every occurrence runs once. Each node
// reaches its capacity, so a cap that let one more through would show.
func TestNodeCapacity(t *testing.T) {
	t.Parallel()
	const jobs, capacity = 100, 4
	var at time.Time
	f := newFleet(t, func(runs string) string {
		// Once the runner is built: the nodes must be up before the burst is due.
		at = time.Now().Add(5 * time.Second).Truncate(time.Second)
		return placementJobs(jobs, burstAt(at), 500*time.Millisecond, fmt.Sprintf("  concurrency = %d", capacity), "")(runs)
	})
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}
	f.waitAllStarted(jobs, at, at, 60*time.Second)
	ev := f.events()
	checkHealthyRuns(t, ev, jobs, at, at, false)
	perNode, _, fleet := atOnce(ev)
	for _, n := range []string{"a", "b", "c"} {
		if perNode[n] > capacity {
			t.Errorf("node %s had %d runs going at once, want at most its capacity %d", n, perNode[n], capacity)
		}
		if perNode[n] < capacity {
			t.Errorf("node %s had at most %d runs going at once, want its capacity %d used by a burst of %d", n, perNode[n], capacity, jobs)
		}
	}
	if fleet > 3*capacity {
		t.Errorf("the fleet had %d runs going at once, want at most %d", fleet, 3*capacity)
	}
	t.Logf("most at once: per node %v, fleet %d", perNode, fleet)
}

// TestFairShareAcrossNodes: three nodes, 60 jobs every second, each run half a second long:
// over 20 seconds every node runs between 25% and 42% of the runs, and no node takes a whole
// second's burst alone, while every occurrence still runs once, never early. Run with
// CRONFLEET_TEST_DISABLE_FAIR_SHARE=1 in the environment, the nodes claim whole bursts
// again and it fails.
func TestFairShareAcrossNodes(t *testing.T) {
	t.Parallel()
	const jobs = 60
	f := newFleet(t, placementJobs(jobs, "* * * * * *", 500*time.Millisecond, "", ""))
	nodes := []string{"a", "b", "c"}
	for _, n := range nodes {
		f.start(n)
	}
	// From a whole second by which every node has counted the others: a node reads the
	// fleet's list at each announcement.
	from := time.Now().Add(5 * time.Second).Truncate(time.Second)
	to := from.Add(19 * time.Second)
	f.waitAllStarted(jobs, from, to, 60*time.Second)
	ev := f.events()
	checkHealthyRuns(t, ev, jobs, from, to, false)

	total, perNode := 0, map[string]int{}
	perSecond := map[time.Time]map[string]int{}
	for _, e := range ev {
		if e.Kind != "start" {
			continue
		}
		_, due := dueOf(t, e.Occurrence)
		if due.Before(from) || due.After(to) {
			continue
		}
		total++
		perNode[e.Node]++
		if perSecond[due] == nil {
			perSecond[due] = map[string]int{}
		}
		perSecond[due][e.Node]++
	}
	for _, n := range nodes {
		if share := float64(perNode[n]) / float64(total); share < 0.25 || share > 0.42 {
			t.Errorf("node %s ran %d of %d runs (%.0f%%), want 25%% to 42%%", n, perNode[n], total, 100*share)
		}
	}
	worst := 0
	for due, by := range perSecond {
		for n, k := range by {
			worst = max(worst, k)
			if k == jobs {
				t.Errorf("node %s took the whole burst of %s alone", n, due.Format(time.TimeOnly))
			}
		}
	}
	t.Logf("runs per node %v of %d; most by one node in one second: %d of %d", perNode, total, worst, jobs)
}

// TestJobMaxConcurrent: a job due every second whose runs take 2.5 s would have three going
// at once (without its max_concurrent, this test sees three); with max_concurrent = 2 the
// three nodes together never have more than two, and the occurrences that waited for room
// still run, each once.
func TestJobMaxConcurrent(t *testing.T) {
	t.Parallel()
	f := newFleet(t, placementJobs(1, "* * * * * *", 2500*time.Millisecond, "", "  overlap = \"allow\"\n  max_concurrent = 2"))
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}
	from := time.Now().Add(time.Second).Truncate(time.Second)
	to := from.Add(7 * time.Second)
	// Two at a time, 2.5 s each: eight occurrences take about ten seconds.
	f.waitAllStarted(1, from, to, 40*time.Second)
	ev := f.events()
	checkHealthyRuns(t, ev, 1, from, to, false)
	_, perJob, _ := atOnce(ev)
	if got := perJob["job-000"]; got != 2 {
		t.Errorf("job-000 had at most %d runs going at once across the fleet, want its max_concurrent 2", got)
	}
}
