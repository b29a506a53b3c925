package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// runCLI runs the runner binary with args and returns its stdout; it fails t on a non-zero
// exit.
func (f *fleet) runCLI(args ...string) string {
	f.t.Helper()
	cmd := exec.Command(f.bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		f.t.Fatalf("runner %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// TestHistoryCommand: `runner history` shows what the fleet ran, from Redis, as a table and
// as JSON, with the figures a reader computes first.
func TestHistoryCommand(t *testing.T) {
	t.Parallel()
	f := newFleet(t, recordJobs(1, "* * * * * *", 0, ""))
	f.start("node-a")
	testwait.For(t, 20*time.Second, "three recorded runs", func() bool { return len(f.history("e2e", "job-000")) >= 3 })

	var runs []struct {
		Occurrence   string    `json:"occurrence"`
		Job          string    `json:"job"`
		Node         string    `json:"node"`
		Attempt      int       `json:"attempt"`
		FencingToken int64     `json:"fencing_token"`
		ScheduledAt  time.Time `json:"scheduled_at"`
		Status       string    `json:"status"`
		LatenessMS   *float64  `json:"lateness_ms"`
		DurationMS   *float64  `json:"duration_ms"`
	}
	out := f.runCLI("history", "-config", f.conf, "-redis", f.redis.URL(), "-n", "2", "-json", "job-000")
	if err := json.Unmarshal([]byte(out), &runs); err != nil {
		t.Fatalf("history -json: %v\n%s", err, out)
	}
	if len(runs) != 2 {
		t.Fatalf("history -n 2 -json: %d runs, want 2:\n%s", len(runs), out)
	}
	for i, r := range runs {
		if r.Job != "job-000" || r.Node != "node-a" || r.Status != "succeeded" || r.Attempt != 1 || r.FencingToken < 1 ||
			r.LatenessMS == nil || *r.LatenessMS < 0 || r.DurationMS == nil || *r.DurationMS < 0 || !strings.HasPrefix(r.Occurrence, "job-000@") {
			t.Errorf("run %d: %+v, want a succeeded first attempt on node-a with its lateness and duration", i, r)
		}
		if i > 0 && !r.ScheduledAt.Before(runs[i-1].ScheduledAt) {
			t.Errorf("runs not newest first: %v after %v", r.ScheduledAt, runs[i-1].ScheduledAt)
		}
	}

	table := f.runCLI("history", "-config", f.conf, "-redis", f.redis.URL(), "job-000")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[0], "SCHEDULED (UTC)") || !strings.Contains(lines[1], "succeeded") || !strings.Contains(lines[1], "node-a") {
		t.Errorf("history table:\n%s\nwant a header, then a row per run naming its status and node", table)
	}
	// The namespace may be given instead of the job files.
	if got := f.runCLI("history", "-namespace", "e2e", "-redis", f.redis.URL(), "-n", "1", "job-000"); !strings.Contains(got, "succeeded") {
		t.Errorf("history -namespace:\n%s", got)
	}
}

// TestPauseResumeTrigger: against a fleet of two nodes, a pause stops the job everywhere
// within about a second (its occurrences are recorded as skipped, with the note), resume
// starts it again, and a trigger adds exactly one run, which history shows as succeeded.
func TestPauseResumeTrigger(t *testing.T) {
	t.Parallel()
	f := newFleet(t, recordJobs(1, "* * * * * *", 0, ""))
	f.start("node-a")
	f.start("node-b")
	testwait.For(t, 20*time.Second, "runs to begin", func() bool { return len(starts(f.events())) >= 2 })
	cli := func(args ...string) string {
		return f.runCLI(append([]string{args[0], "-config", f.conf, "-redis", f.redis.URL()}, args[1:]...)...)
	}

	cli("pause", "-note", "database migration", "job-000")
	pausedAt := time.Now()
	skipped := func() (n int) {
		for _, r := range f.history("e2e", "job-000") {
			if r.Status == "skipped" && strings.Contains(r.Error, "job paused") && strings.Contains(r.Error, "database migration") {
				n++
			}
		}
		return n
	}
	testwait.For(t, 20*time.Second, "paused occurrences to be recorded as skipped", func() bool { return skipped() >= 3 })
	for occ := range starts(f.events()) {
		if _, due := dueOf(t, occ); due.After(pausedAt.Add(time.Second)) {
			t.Errorf("%s, due %v after the pause, ran", occ, due.Sub(pausedAt))
		}
	}

	cli("resume", "job-000")
	resumedAt := time.Now()
	testwait.For(t, 20*time.Second, "the job to run again after resume", func() bool {
		for occ := range starts(f.events()) {
			if _, due := dueOf(t, occ); due.After(resumedAt) {
				return true
			}
		}
		return false
	})

	var trig struct {
		Occurrence string `json:"occurrence"`
	}
	if err := json.Unmarshal([]byte(cli("trigger", "-json", "job-000")), &trig); err != nil || !strings.HasPrefix(trig.Occurrence, "job-000@") {
		t.Fatalf("trigger -json: %+v, %v", trig, err)
	}
	testwait.For(t, 20*time.Second, "the triggered run to be recorded", func() bool {
		for _, r := range f.history("e2e", "job-000") {
			if r.Occurrence == trig.Occurrence && r.Status == "succeeded" {
				return true
			}
		}
		return false
	})
	if n := len(starts(f.events())[trig.Occurrence]); n != 1 {
		t.Errorf("the triggered occurrence started %d times, want once", n)
	}
	var hist []struct {
		Occurrence string `json:"occurrence"`
		Status     string `json:"status"`
	}
	if err := json.Unmarshal([]byte(cli("history", "-json", "-n", "100", "job-000")), &hist); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(hist, func(r struct {
		Occurrence string `json:"occurrence"`
		Status     string `json:"status"`
	}) bool {
		return r.Occurrence == trig.Occurrence && r.Status == "succeeded"
	}) {
		t.Errorf("history -json does not show the triggered run %s as succeeded", trig.Occurrence)
	}
}

// TestStatusCommand: `runner status` lists the live nodes by name with their job sets, each
// job's next fire, last result and pause, and reports drift when a node runs other job
// files; a node that stops cleanly leaves the list.
func TestStatusCommand(t *testing.T) {
	t.Parallel()
	f := newFleet(t, recordJobs(2, "* * * * * *", 0, ""))
	f.start("node-a")
	b := f.start("node-b")
	type status struct {
		Nodes []struct {
			Name       string `json:"name"`
			Alive      bool   `json:"alive"`
			JobSetHash string `json:"job_set_hash"`
			Jobs       int    `json:"jobs"`
			Drifted    bool   `json:"drifted"`
		} `json:"nodes"`
		Drift bool `json:"drift"`
		Jobs  []struct {
			Name   string                   `json:"name"`
			Next   *time.Time               `json:"next"`
			Last   *struct{ Status string } `json:"last"`
			Paused *struct{ Note string }   `json:"paused"`
		} `json:"jobs"`
	}
	read := func() status {
		var st status
		out := f.runCLI("status", "-config", f.conf, "-redis", f.redis.URL(), "-json")
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status -json: %v\n%s", err, out)
		}
		return st
	}
	var st status
	testwait.For(t, 20*time.Second, "both nodes listed and a run recorded for each job", func() bool {
		st = read()
		return len(st.Nodes) == 2 && len(st.Jobs) == 2 && st.Jobs[0].Last != nil && st.Jobs[1].Last != nil
	})
	for i, n := range st.Nodes {
		if want := []string{"node-a", "node-b"}[i]; n.Name != want || !n.Alive || n.Jobs != 2 || n.JobSetHash == "" || n.JobSetHash != st.Nodes[0].JobSetHash {
			t.Errorf("node %d: %+v, want %s alive with the same 2-job set", i, n, want)
		}
	}
	if st.Drift {
		t.Error("drift reported for nodes with the same job files")
	}
	for _, j := range st.Jobs {
		if j.Next == nil || j.Last.Status != "succeeded" || j.Paused != nil {
			t.Errorf("job %s: next %v, last %+v, paused %+v; want a next fire, a success and no pause", j.Name, j.Next, j.Last, j.Paused)
		}
	}

	// A node given other job files: its job set differs, and status says so.
	other := f.dir + "/other.hcl"
	if err := os.WriteFile(other, []byte(recordJobs(1, "* * * * * *", 0, "")(f.runs)), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := fleettest.StartNode(fleettest.NodeConfig{Bin: f.bin, Name: "node-c", Configs: []string{other}, RedisURL: f.redis.URL(), LogPath: f.dir + "/node-c.log"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(10 * time.Second) })
	testwait.For(t, 20*time.Second, "drift to be reported", func() bool { st = read(); return st.Drift && len(st.Nodes) == 3 })
	// The node to redeploy is the one whose job set most live nodes do not run.
	for _, n := range st.Nodes {
		if n.Drifted != (n.Name == "node-c") {
			t.Errorf("node %s marked drifted: %v, want only node-c", n.Name, n.Drifted)
		}
	}
	testwait.For(t, 20*time.Second, "node-a to log the node that differs", func() bool {
		return strings.Contains(f.nodes["node-a"].Log(), "nodes run a different job set") && strings.Contains(f.nodes["node-a"].Log(), "nodes=node-c")
	})
	// While the job sets differ, the job they share still runs once per occurrence.
	testwait.For(t, 20*time.Second, "node-c to run its share", func() bool {
		return slices.ContainsFunc(f.events(), func(e fleettest.Event) bool { return e.Node == "node-c" })
	})
	for occ, ss := range starts(f.events()) {
		if len(ss) != 1 {
			t.Errorf("%s started %d times while the job sets differed, want once", occ, len(ss))
		}
	}

	if err := b.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 20*time.Second, "the stopped node to leave the list", func() bool {
		for _, n := range read().Nodes {
			if n.Name == "node-b" {
				return false
			}
		}
		return true
	})
}

// TestNextAgreesWithTheFleet: `runner next` computes, from the job files alone, the
// instants at which a real node then runs the job, jitter included.
func TestNextAgreesWithTheFleet(t *testing.T) {
	t.Parallel()
	f := newFleet(t, recordJobs(1, "*/2 * * * * *", 0, `  jitter = "1500ms"`))
	from := time.Now().Add(2 * time.Second).UTC()
	var fires []struct {
		At         time.Time `json:"at"`
		Scheduled  time.Time `json:"scheduled"`
		JitterMS   int64     `json:"jitter_ms"`
		Occurrence string    `json:"occurrence"`
	}
	out := f.runCLI("next", "-config", f.conf, "-from", from.Format(time.RFC3339Nano), "-n", "4", "-json", "job-000")
	if err := json.Unmarshal([]byte(out), &fires); err != nil || len(fires) != 4 {
		t.Fatalf("next -json: %v\n%s", err, out)
	}
	for i, fr := range fires {
		if !fr.At.After(from) || fr.At.Sub(fr.Scheduled) != time.Duration(fr.JitterMS)*time.Millisecond || fr.JitterMS >= 1500 {
			t.Errorf("fire %d: %+v; want after -from, at its schedule's instant plus a jitter under 1.5s", i, fr)
		}
		if i > 0 && fr.At.Before(fires[i-1].At) {
			t.Errorf("fires out of order: %v before %v", fr.At, fires[i-1].At)
		}
	}

	f.start("node-a")
	// History is written when a run completes, after its handler started: wait for the
	// records, not the starts, or the last record may not be there yet.
	recs := map[string]time.Time{}
	testwait.For(t, 30*time.Second, "the fleet to record the fires listed", func() bool {
		clear(recs)
		for _, r := range f.history("e2e", "job-000") {
			recs[r.Occurrence] = r.ScheduledAt
		}
		for _, fr := range fires {
			if _, ok := recs[fr.Occurrence]; !ok {
				return false
			}
		}
		return true
	})
	for _, fr := range fires {
		if got := recs[fr.Occurrence]; !got.Equal(fr.At) {
			t.Errorf("%s: the fleet scheduled it at %v, next said %v", fr.Occurrence, got, fr.At)
		}
		for _, s := range starts(f.events())[fr.Occurrence] {
			if s.At.Before(fr.At) {
				t.Errorf("%s started at %v, before %v", fr.Occurrence, s.At, fr.At)
			}
		}
	}
}

// TestBackfill: `runner backfill` runs the occurrences a past range of the schedule had,
// once each, under ids of their own; -dry-run lists them and enqueues nothing, and a range
// over -limit is refused.
func TestBackfill(t *testing.T) {
	t.Parallel()
	f := newFleet(t, recordJobs(1, "* * * * * *", 0, ""))
	f.start("node-a")
	testwait.For(t, 20*time.Second, "runs to begin", func() bool { return len(starts(f.events())) >= 1 })
	to := time.Now().Add(-time.Minute).Truncate(time.Second)
	from := to.Add(-3 * time.Second)
	args := func(extra ...string) []string {
		return append([]string{"backfill", "-config", f.conf, "-redis", f.redis.URL(), "-from", from.Format(time.RFC3339), "-to", to.Format(time.RFC3339)}, append(extra, "job-000")...)
	}
	type result struct {
		DryRun      bool     `json:"dry_run"`
		Occurrences []string `json:"occurrences"`
		Enqueued    int      `json:"enqueued"`
	}
	var dry result
	if err := json.Unmarshal([]byte(f.runCLI(args("-dry-run", "-json")...)), &dry); err != nil || !dry.DryRun || len(dry.Occurrences) != 3 || dry.Enqueued != 0 {
		t.Fatalf("dry run: %+v, %v; want the 3 occurrences of the range, none enqueued", dry, err)
	}
	if err := exec.Command(f.bin, args("-limit", "2")...).Run(); err == nil {
		t.Error("a range over -limit was accepted")
	}

	var res result
	if err := json.Unmarshal([]byte(f.runCLI(args("-json")...)), &res); err != nil || res.Enqueued != 3 || len(res.Occurrences) != 3 {
		t.Fatalf("backfill: %+v, %v; want 3 enqueued", res, err)
	}
	testwait.For(t, 20*time.Second, "the backfilled occurrences to succeed", func() bool {
		done := map[string]bool{}
		for _, r := range f.history("e2e", "job-000") {
			if r.Status == "succeeded" {
				done[r.Occurrence] = true
			}
		}
		for _, id := range res.Occurrences {
			if !done[id] {
				return false
			}
		}
		return true
	})
	for i, id := range res.Occurrences {
		if n := len(starts(f.events())[id]); n != 1 {
			t.Errorf("%s started %d times, want once", id, n)
		}
		if _, due := dueOf(t, id); !due.Equal(from.Add(time.Duration(i+1) * time.Second)) {
			t.Errorf("occurrence %d of the range is due %v, want %v", i, due, from.Add(time.Duration(i+1)*time.Second))
		}
		if dry.Occurrences[i] == id {
			t.Errorf("the dry run's id %s was reused: each backfill is its own occurrence", id)
		}
	}
}

// TestReloadJobFiles: a running node picks up a changed job file by itself, refuses a file
// that does not validate (with its diagnostics) and keeps its last good set, and reloads on
// SIGHUP.
func TestReloadJobFiles(t *testing.T) {
	t.Parallel()
	f := newFleet(t, recordJobs(1, "* * * * * *", 0, ""))
	n := f.start("node-a")
	ranAfter := func(job string, after time.Time) bool {
		for occ := range starts(f.events()) {
			if j, due := dueOf(t, occ); j == job && due.After(after) {
				return true
			}
		}
		return false
	}
	testwait.For(t, 20*time.Second, "job-000 to run", func() bool { return ranAfter("job-000", time.Time{}) })

	write := func(src string) time.Time {
		t.Helper()
		if err := os.WriteFile(f.conf, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	two := recordJobs(2, "* * * * * *", 0, "")(f.runs)
	added := write(two)
	testwait.For(t, 20*time.Second, "the job added to the file to run", func() bool { return ranAfter("job-001", added) })

	broken := write(two + "\njob \"job-002\" {\n  schedule = \"61 * * * *\"\n}\n")
	testwait.For(t, 20*time.Second, "the broken file to be refused", func() bool {
		return strings.Contains(n.Log(), "job files not reloaded: they do not validate")
	})
	if !strings.Contains(n.Log(), "Invalid schedule") {
		t.Errorf("the refusal does not carry the diagnostics:\n%s", n.Log())
	}
	testwait.For(t, 20*time.Second, "both jobs to run on after the refusal", func() bool {
		return ranAfter("job-000", broken.Add(time.Second)) && ranAfter("job-001", broken.Add(time.Second))
	})

	// SIGHUP reloads too: back to one job, and job-001 stops.
	if err := os.WriteFile(f.conf, []byte(recordJobs(1, "* * * * * *", 0, "")(f.runs)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 20*time.Second, "the removal to be reloaded", func() bool {
		return strings.Contains(n.Log(), "removed=1")
	})
	removed := time.Now()
	testwait.For(t, 20*time.Second, "job-000 to run on", func() bool { return ranAfter("job-000", removed.Add(time.Second)) })
	if ranAfter("job-001", removed.Add(time.Second)) {
		t.Error("job-001 ran after it was removed")
	}
}
