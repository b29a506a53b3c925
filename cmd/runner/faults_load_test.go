//go:build faults

package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/cronfleet/cronfleet/internal/fleettest"
)

// The load scenario's occurrences a second: see scenarioLoad.
const (
	fullLoad     = 10000
	fullLoadCPUs = 4
	loadPerCPU   = 1500
)

// loadSummary is what the load scenario reads of fleetbench's JSON summary.
type loadSummary struct {
	Expected      int                   `json:"expected"`
	Succeeded     int                   `json:"succeeded"`
	Duplicates    int                   `json:"duplicates"`
	Misses        int                   `json:"misses"`
	RunDuplicates int                   `json:"run_duplicates"`
	NodeRSS       map[string][3]float64 `json:"node_rss_mib"`
	Lateness      struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"lateness_ms"`
}

// scenarioLoad runs a load of occurrences every second for a minute on three nodes with the
// noop plugin, through the fleet benchmark (internal/cmd/fleetbench), which owns that
// harness: no duplicate, no miss, and each node's memory flat over the minute's second half.
// The load (fullLoad) takes two whole CPUs for the fleet alone (three nodes, their
// plugins and Redis on one machine; docs/benchmarks.md has the CPU per occurrence), so a
// machine with fewer than fullLoadCPUs runs loadPerCPU for each CPU it has, which leaves
// room for what else runs on it; CRONFLEET_FAULTS_LOAD sets the load.
func scenarioLoad(t *testing.T, s *suite) {
	load := fullLoad
	if runtime.NumCPU() < fullLoadCPUs {
		load = loadPerCPU * runtime.NumCPU()
	}
	if v := os.Getenv("CRONFLEET_FAULTS_LOAD"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CRONFLEET_FAULTS_LOAD=%q: want a number of occurrences a second", v)
		}
		load = n
	}
	runLoad(t, s, 3, load)
}

// scenarioFullLoadOneNode runs the full load, fullLoad occurrences every second for
// a minute, on one node with its noop plugin: on a 2-CPU machine, one node, its plugin and
// Redis are the lightest fleet for it (each more node adds its own cost per occurrence).
// docs/reliability.md has its margin: it held with the fleet held to 1.3 of the 2 CPUs.
// CRONFLEET_FAULTS_FULL_LOAD=0 leaves it out, for a machine too small for it.
func scenarioFullLoadOneNode(t *testing.T, s *suite) {
	if os.Getenv("CRONFLEET_FAULTS_FULL_LOAD") == "0" {
		t.Skip("CRONFLEET_FAULTS_FULL_LOAD=0: the full load on one node is left out")
	}
	if runtime.NumCPU() < 2 {
		t.Skip("the full load on one node needs 2 CPUs: one for Redis, one for the node and its plugin")
	}
	runLoad(t, s, 1, fullLoad)
}

// runLoad runs load occurrences every second for a minute on nodes nodes with the noop
// plugin, through fleetbench: no duplicate, no miss, each node's memory flat.
func runLoad(t *testing.T, s *suite, nodes, load int) {
	root, err := fleettest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bench := filepath.Join(dir, "fleetbench")
	if err := fleettest.Build(root, "./internal/cmd/fleetbench", bench); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "summary.json")
	// A long warm-up: a node's memory grows to its working size first, which includes its
	// memory of recent completions for the lost-state guard (docs/reliability.md), full
	// after a while at this load.
	cmd := exec.Command(bench, "-jobs", strconv.Itoa(load), "-nodes", strconv.Itoa(nodes), "-warmup", "30s", "-duration", "60s", "-node-log-level", "warn", "-out", out)
	cmd.Dir = root // fleetbench builds the runner from the module it runs in
	text, err := cmd.CombinedOutput()
	t.Logf("fleetbench:\n%s", text)
	b, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatalf("fleetbench wrote no summary (%v): %v", err, rerr)
	}
	var sum loadSummary
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	fg := figures{expected: sum.Expected, run: sum.Succeeded, dupes: sum.Duplicates, missed: sum.Misses}
	fg.note = fmt.Sprintf("%d a second on %d node(s), %d CPUs; lateness p50 %.1f ms, p99 %.1f ms; node RSS (MiB, start→middle→end)", load, nodes, runtime.NumCPU(), sum.Lateness.P50, sum.Lateness.P99)
	for _, name := range sortedNames(sum.NodeRSS) {
		r := sum.NodeRSS[name]
		fg.note += fmt.Sprintf(" %s %.0f→%.0f→%.0f", name, r[0], r[1], r[2])
		// Flat: in the second half, what the runs add is garbage the collector returns.
		if r[2] > r[1]*1.25+32 {
			t.Errorf("node %s grew from %.0f to %.0f MiB over the minute's second half, want flat", name, r[1], r[2])
		}
	}
	s.report(t, fg)
	if fg.missed != 0 || sum.RunDuplicates != 0 {
		t.Errorf("missed %d, duplicates over the whole run %d: want 0", fg.missed, sum.RunDuplicates)
	}
}

func sortedNames(m map[string][3]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
