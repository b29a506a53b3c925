package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleettest"
)

// TestPriorityBurst: a burst due at one instant, half its jobs at priority 90 and half at
// 10, on three nodes whose capacities sum to a twentieth of the burst, with runs long enough
// that the burst takes many rounds: every high-priority occurrence starts before any
// low-priority one (in the order the handlers appended their start lines), and every
// occurrence runs once. The high and low jobs alternate by name and spread over every
// shard, so neither due time nor a shard's order can pass for priority; without priorities
// the runs file interleaves them from the first round on.
func TestPriorityBurst(t *testing.T) {
	t.Parallel()
	const jobs = 2000
	capacity := []int{33, 33, 34}
	var at time.Time
	f := newFleet(t, func(runs string) string {
		// Once the runner is built: the nodes must be up before the burst is due.
		at = time.Now().Add(6 * time.Second).Truncate(time.Second)
		var b strings.Builder
		b.WriteString("runner {\n  namespace = \"e2e\"\n  lease = \"5s\"\n}\n")
		cmd := fleettest.RecordCommand(runs, 200*time.Millisecond)
		for i := range jobs {
			fmt.Fprintf(&b, "job \"job-%03d\" {\n  schedule = %q\n  priority = %d\n  handler \"exec\" {\n    command = [%q, %q, %q]\n    env = { RUNS = %q }\n  }\n}\n",
				i, burstAt(at), priorityOf(i), cmd[0], cmd[1], cmd[2], runs)
		}
		return b.String()
	})
	for i, n := range []string{"a", "b", "c"} {
		f.start(n, "-concurrency", fmt.Sprint(capacity[i]))
	}
	f.waitAllStarted(jobs, at, at, 90*time.Second)
	ev := f.events()
	checkHealthyRuns(t, ev, jobs, at, at, false)
	lastHigh, firstLow, n := -1, -1, 0
	var started []fleettest.Event
	for _, e := range ev {
		if e.Kind != "start" {
			continue
		}
		started = append(started, e)
		job, _ := dueOf(t, e.Occurrence)
		var i int
		if _, err := fmt.Sscanf(job, "job-%d", &i); err != nil {
			t.Fatalf("job %q: %v", job, err)
		}
		if priorityOf(i) == 90 {
			lastHigh = n
		} else if firstLow < 0 {
			firstLow = n
		}
		n++
	}
	if firstLow < lastHigh {
		t.Errorf("start %d was the first of priority 10, start %d the last of priority 90: want every priority 90 first", firstLow+1, lastHigh+1)
		for _, e := range started[max(firstLow-3, 0):min(lastHigh+3, len(started))] {
			t.Logf("start %s on %s at %s", e.Occurrence, e.Node, e.At.Format("15:04:05.000"))
		}
	}
	t.Logf("%d starts: the last of priority 90 is start %d, the first of priority 10 start %d", n, lastHigh+1, firstLow+1)
}

// priorityOf is the priority of job i of TestPriorityBurst.
func priorityOf(i int) int {
	if i%2 == 0 {
		return 90
	}
	return 10
}
