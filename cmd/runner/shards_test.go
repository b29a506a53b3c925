package main_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// Broadcast and sharded occurrences end to end: three real runner processes on one real
// Redis; each part's handler appends "start|end OCCURRENCE TOKEN NODE ATTEMPT INDEX COUNT"
// to the runs file, INDEX and COUNT from CRONFLEET_SHARD_INDEX and CRONFLEET_SHARD_COUNT.
// Exactly once is one succeeded record per part id, and one end line.

// partsJob is a job whose exec handler records each part's start and end around sleep;
// body adds to the job block.
func partsJob(name, runs, sleep, body string) string {
	line := `$CRONFLEET_OCCURRENCE_ID $CRONFLEET_FENCING_TOKEN $CRONFLEET_NODE $CRONFLEET_ATTEMPT $CRONFLEET_SHARD_INDEX $CRONFLEET_SHARD_COUNT`
	script := fmt.Sprintf(`echo "start %s" >> "$RUNS"; sleep %s; echo "end %s" >> "$RUNS"`, line, sleep, line)
	return fmt.Sprintf("job %q {\n%s  handler \"exec\" {\n    command = [\"sh\", \"-c\", %q]\n    env     = { RUNS = %q }\n  }\n}\n",
		name, body, script, runs)
}

type partLine struct {
	kind, occ, node string
	token           int64
	attempt         int
	index, count    int
}

// partLines reads the handlers' lines (a last line without its newline is being written).
func partLines(t *testing.T, file string) []partLine {
	t.Helper()
	var out []partLine
	for _, fs := range handlerLines(t, file, 7) {
		l := partLine{kind: fs[0], occ: fs[1], node: fs[3]}
		var errs [4]error
		l.token, errs[0] = strconv.ParseInt(fs[2], 10, 64)
		l.attempt, errs[1] = strconv.Atoi(fs[4])
		l.index, errs[2] = strconv.Atoi(fs[5])
		l.count, errs[3] = strconv.Atoi(fs[6])
		for _, err := range errs {
			if err != nil {
				t.Fatalf("malformed line %q: %v", strings.Join(fs, " "), err)
			}
		}
		out = append(out, l)
	}
	return out
}

// partsFleet starts three nodes on a job file made by jobs, given the runs file and the
// instant (a multiple of six seconds, far enough ahead for the nodes to be up and announced) at
// which the jobs' first occurrence is due.
func partsFleet(t *testing.T, jobs func(runs string, start time.Time) string) (*fleet, time.Time) {
	t.Helper()
	var start time.Time
	f := newFleet(t, func(runs string) string {
		// On a multiple of six seconds: the schedules every two and three seconds start there.
		start = time.Now().Add(14 * time.Second).Truncate(6 * time.Second).UTC()
		return "runner {\n  namespace = \"e2e\"\n  lease     = \"2s\"\n}\n" + jobs(runs, start)
	})
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}
	return f, start
}

// checkParts checks the occurrences of job from start, every step, count of them: each ran
// as parts parts, each index once (one succeeded record, one end line with its index and
// count), and the occurrence itself has one succeeded record, newer than its parts'.
func checkParts(t *testing.T, f *fleet, job string, start time.Time, step time.Duration, count, parts int) (ends map[string]partLine) {
	t.Helper()
	var occs []string
	for i := range count {
		occs = append(occs, cron.OccurrenceID(job, start.Add(time.Duration(i)*step)))
	}
	testwait.For(t, 60*time.Second, "every occurrence of "+job+" recorded", func() bool {
		got := map[string]bool{}
		for _, r := range f.history("e2e", job) {
			got[r.Occurrence] = true
		}
		for _, o := range occs {
			if !got[o] {
				return false
			}
		}
		return true
	})
	hist := f.history("e2e", job) // newest first
	lines := partLines(t, f.runs)
	ends = map[string]partLine{}
	for _, occ := range occs {
		parent := slices.IndexFunc(hist, func(r queue.Record) bool { return r.Occurrence == occ })
		var recs []queue.Record
		for _, r := range hist {
			if r.Occurrence == occ {
				recs = append(recs, r)
			}
		}
		if len(recs) != 1 || recs[0].Status != queue.StatusSucceeded {
			t.Errorf("%s: records %+v, want one succeeded", occ, recs)
		}
		for i := range parts {
			part := cron.PartID(occ, i, parts)
			var ok []int
			for k, r := range hist {
				if r.Occurrence == part && r.Status == queue.StatusSucceeded {
					ok = append(ok, k)
				}
			}
			if len(ok) != 1 {
				t.Errorf("%s: %d succeeded records, want 1", part, len(ok))
			} else if ok[0] < parent {
				t.Errorf("%s recorded after its parent %s", part, occ)
			}
			var n int
			for _, l := range lines {
				if l.occ == part && l.kind == "end" {
					n++
					ends[part] = l
					if l.index != i || l.count != parts {
						t.Errorf("%s: told part %d of %d", part, l.index, l.count)
					}
				}
			}
			if n != 1 {
				t.Errorf("%s ended %d times, want once", part, n)
			}
		}
	}
	// No part of any other count or index ran.
	for _, l := range lines {
		if p, i, n, ok := cron.ParsePart(l.occ); !ok || !slices.Contains(occs, p) || i >= parts || n != parts {
			t.Errorf("unexpected run %+v", l)
		}
	}
	return ends
}

// TestBroadcast: a broadcast occurrence runs once on each of the three nodes.
func TestBroadcast(t *testing.T) {
	t.Parallel()
	const runs = 3
	f, start := partsFleet(t, func(file string, start time.Time) string {
		return partsJob("everywhere", file, "0.3", fmt.Sprintf("  schedule  = \"*/2 * * * * *\"\n  start_at  = %q\n  max_runs  = %d\n  broadcast = true\n",
			start.Format(time.RFC3339), runs))
	})
	ends := checkParts(t, f, "everywhere", start, 2*time.Second, runs, 3)
	for i := range runs {
		occ := cron.OccurrenceID("everywhere", start.Add(time.Duration(i)*2*time.Second))
		var nodes []string
		for p := range 3 {
			nodes = append(nodes, ends[cron.PartID(occ, p, 3)].node)
		}
		slices.Sort(nodes)
		if !slices.Equal(nodes, []string{"a", "b", "c"}) {
			t.Errorf("%s ran on %v, want once on each of a, b, c", occ, nodes)
		}
	}
}

// TestSharded: an occurrence of a job with shards = 5 runs parts 0 to 4, each once, spread
// over the nodes; the occurrence is recorded once, after them, and a job after it runs once
// per occurrence, told the occurrence's id.
func TestSharded(t *testing.T) {
	t.Parallel()
	const runs = 2
	var deps string
	f, start := partsFleet(t, func(file string, start time.Time) string {
		deps = filepath.Join(filepath.Dir(file), "deps.log")
		return partsJob("split", file, "0.5", fmt.Sprintf("  schedule = \"*/3 * * * * *\"\n  start_at = %q\n  max_runs = %d\n  shards   = 5\n",
			start.Format(time.RFC3339), runs)) +
			depJob("merge", deps, "0", "false", "  after \"split\" {}\n")
	})
	ends := checkParts(t, f, "split", start, 3*time.Second, runs, 5)
	nodes := map[string]int{}
	for _, l := range ends {
		nodes[l.node]++
	}
	t.Logf("parts per node: %v", nodes)
	if len(nodes) < 2 {
		t.Errorf("every part ran on %v, want them spread over the nodes", nodes)
	}
	var want []depLine
	for i := range runs {
		occ := cron.OccurrenceID("split", start.Add(time.Duration(i)*3*time.Second))
		want = append(want, depLine{"merge", cron.DependentID("merge", occ), occ})
	}
	testwait.For(t, 30*time.Second, "merge to run after each occurrence of split", func() bool {
		return len(depLines(t, deps)) >= runs
	})
	got := depLines(t, deps)
	slices.SortFunc(got, func(a, b depLine) int { return strings.Compare(a.occ, b.occ) })
	if !slices.Equal(got, want) {
		t.Errorf("merge ran %v, want once after each occurrence of split: %v", got, want)
	}
}

// TestShardedPartOfKilledNode: a node killed (SIGKILL) while it runs a part: the part is
// taken over by another node, with the next attempt and a larger fencing token, and every
// index runs to completion once.
func TestShardedPartOfKilledNode(t *testing.T) {
	t.Parallel()
	f, start := partsFleet(t, func(file string, start time.Time) string {
		return partsJob("split", file, "3", fmt.Sprintf("  schedule = %q\n  shards   = 5\n  retry {\n    attempts = 3\n  }\n",
			burstAt(start)))
	})
	var victim partLine
	testwait.For(t, 40*time.Second, "a node running a part", func() bool {
		for _, l := range partLines(t, f.runs) {
			if l.kind == "start" {
				victim = l
				return true
			}
		}
		return false
	})
	if err := f.nodes[victim.node].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = f.nodes[victim.node].Wait(10 * time.Second)
	t.Logf("killed node %s running %s", victim.node, victim.occ)

	checkParts(t, f, "split", start, 24*time.Hour, 1, 5)
	var again []partLine
	for _, l := range partLines(t, f.runs) {
		if l.occ == victim.occ && l.kind == "end" {
			again = append(again, l)
		}
	}
	if len(again) != 1 || again[0].node == victim.node || again[0].attempt != victim.attempt+1 || again[0].token <= victim.token {
		t.Errorf("%s ended %+v after its node was killed, want once on another node with the next attempt and a larger token than %+v", victim.occ, again, victim)
	}
}
