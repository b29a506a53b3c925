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
// that the burst takes many rounds: every high-priority occurrence is claimed and starts
// before any low-priority one, and every occurrence runs once. Claims are decided in Redis
// (docs/scheduling.md, Priority): each job here has one occurrence, so its fencing token is
// Redis' time of its claim in ms × 1000, and every priority 90 token must be at most every
// priority 10 one. Starts follow claims by each node's own latency, which the settle covers
// (queue.PrioritySettle): the handlers' start lines, in the order the runs file got them and
// by their clock, put every priority 90 start before every priority 10 one. The high and low
// jobs alternate by name and spread over every shard, so neither due time nor a shard's
// order can pass for priority; without priorities the runs file interleaves them from the
// first round on.
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
	var maxHigh, minLow int64 = 0, 1 << 62
	var lastHighAt, firstLowAt time.Time
	var highs, lows int
	lastHigh, firstLow, n := -1, -1, 0
	for _, e := range ev {
		if e.Kind != "start" {
			continue
		}
		job, _ := dueOf(t, e.Occurrence)
		var i int
		if _, err := fmt.Sscanf(job, "job-%d", &i); err != nil {
			t.Fatalf("job %q: %v", job, err)
		}
		if priorityOf(i) == 90 {
			highs++
			maxHigh, lastHigh = max(maxHigh, e.Token), n
			if e.At.After(lastHighAt) {
				lastHighAt = e.At
			}
		} else {
			lows++
			minLow = min(minLow, e.Token)
			if firstLowAt.IsZero() || e.At.Before(firstLowAt) {
				firstLowAt = e.At
			}
			if firstLow < 0 {
				firstLow = n
			}
		}
		n++
	}
	if highs != jobs/2 || lows != jobs/2 {
		t.Fatalf("%d priority 90 and %d priority 10 starts, want %d each", highs, lows, jobs/2)
	}
	if maxHigh > minLow {
		t.Errorf("a priority 10 occurrence was claimed at %d, before the last priority 90 one at %d (Redis ms × 1000): want every priority 90 claimed first",
			minLow, maxHigh)
	}
	if lastHigh > firstLow || lastHighAt.After(firstLowAt) {
		t.Errorf("start %d, at %s, was of priority 10, before the last of priority 90, start %d at %s: want every priority 90 run started first",
			firstLow+1, firstLowAt.Format(time.StampMilli), lastHigh+1, lastHighAt.Format(time.StampMilli))
	}
	t.Logf("%d starts: the last priority 90 claim at %d, the first priority 10 claim at %d; the last of priority 90 is start %d, the first of priority 10 start %d",
		n, maxHigh, minLow, lastHigh+1, firstLow+1)
}

// priorityOf is the priority of job i of TestPriorityBurst.
func priorityOf(i int) int {
	if i%2 == 0 {
		return 90
	}
	return 10
}
