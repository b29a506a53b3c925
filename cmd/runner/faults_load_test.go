//go:build faults

package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cronfleet/cronfleet/internal/fleettest"
)

// loadSummary is what the load scenario reads of fleetbench's JSON summary.
type loadSummary struct {
	Expected      int                   `json:"expected"`
	Succeeded     int                   `json:"succeeded"`
	Duplicates    int                   `json:"duplicates"`
	Misses        int                   `json:"misses"`
	RunDuplicates int                   `json:"run_duplicates"`
	NodeRSS       map[string][2]float64 `json:"node_rss_mib"`
	Lateness      struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"lateness_ms"`
}

// scenarioLoad runs 10,000 occurrences a second for a minute on three nodes with the noop
// plugin, through the fleet benchmark (internal/cmd/fleetbench), which owns that harness:
// no duplicate, no miss, and each node's memory at the end of the minute about what it
// was at its start.
func scenarioLoad(t *testing.T, s *suite) {
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
	cmd := exec.Command(bench, "-jobs", "10000", "-warmup", "5s", "-duration", "60s", "-node-log-level", "warn", "-out", out)
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
	fg.note = fmt.Sprintf("lateness p50 %.1f ms, p99 %.1f ms; node RSS (MiB)", sum.Lateness.P50, sum.Lateness.P99)
	for _, name := range sortedNames(sum.NodeRSS) {
		r := sum.NodeRSS[name]
		fg.note += fmt.Sprintf(" %s %.0f→%.0f", name, r[0], r[1])
		// Flat: what a minute of runs adds is garbage the collector returns, not a leak.
		if r[1] > r[0]*1.25+32 {
			t.Errorf("node %s grew from %.0f to %.0f MiB over the minute, want flat", name, r[0], r[1])
		}
	}
	s.report(t, fg)
	if fg.missed != 0 || sum.RunDuplicates != 0 {
		t.Errorf("missed %d, duplicates over the whole run %d: want 0", fg.missed, sum.RunDuplicates)
	}
}

func sortedNames(m map[string][2]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
