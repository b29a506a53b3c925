package fleet_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/fleet"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/redistest"
)

const jobs = `
runner { namespace = "fleettest" }
job "hourly" {
  schedule = "0 * * * *"
  jitter   = "10m"
  handler "exec" { command = ["true"] }
}
job "nightly" {
  schedule = "30 2 * * *"
  timezone = "Europe/Berlin"
  handler "exec" { command = ["true"] }
}
`

// newFleet is a Fleet over jobs on a real Redis, with its clock at now.
func newFleet(t *testing.T, now time.Time) (*fleet.Fleet, *queue.Queue) {
	t.Helper()
	cfg, _, diags := config.Parse("jobs.hcl", []byte(jobs))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	q := queue.New(redistest.Start(t).Client(t), queue.Config{Namespace: "fleettest", Lease: 5 * time.Second})
	return fleet.New(q, fleet.Config{Jobs: func() *config.Config { return cfg }, Now: func() time.Time { return now }}), q
}

// TestActionsAreReadBack: what an action does, the fleet's reads show, and the audit log
// lists every action with who took it, newest first.
func TestActionsAreReadBack(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	f, _ := newFleet(t, now)
	ops := fleet.Actor{By: "ops@host", Via: "cli"}
	ctx := t.Context()

	if _, err := f.Pause(ctx, "nightly", "disk\n replaced", ops); err != nil {
		t.Fatal(err)
	}
	page, err := f.Jobs(ctx, fleet.JobQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Jobs) != 2 || page.Jobs[0].Name != "hourly" || page.Jobs[1].Health != fleet.HealthPaused ||
		page.Jobs[1].Paused == nil || page.Jobs[1].Paused.Note != "disk replaced" || page.Jobs[0].Health != fleet.HealthNew {
		t.Errorf("jobs after the pause: %+v", page.Jobs)
	}
	trig, err := f.Trigger(ctx, "hourly", ops)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(trig.Occurrence, "hourly@2026-12-06T12:00:00.000Z~") {
		t.Errorf("triggered %q, want an id due now with a nonce", trig.Occurrence)
	}
	if was, err := f.Resume(ctx, "nightly", ops); err != nil || !*was.WasPaused {
		t.Errorf("resume: %+v, %v", was, err)
	}
	bf, err := f.Backfill(ctx, "hourly", fleet.BackfillRequest{From: now.Add(-3 * time.Hour), To: now.Add(-time.Hour)}, ops)
	if err != nil || bf.Enqueued != 2 {
		t.Fatalf("backfill: %+v, %v; want the two hours of the range", bf, err)
	}
	entries, err := f.Audit(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Action+" "+e.Job+" by "+e.By+" via "+e.Via+": "+e.Note+e.Detail)
	}
	want := []string{
		"backfill hourly by ops@host via cli: 2 occurrences of (2026-12-06T09:00:00Z, 2026-12-06T11:00:00Z]",
		"resume nightly by ops@host via cli: it was paused",
		"trigger hourly by ops@host via cli: " + trig.Occurrence,
		"pause nightly by ops@host via cli: disk replaced",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit log (-want +got):\n%s", diff)
	}
}

// TestBadInputActsOnNothing: each mistake is an InputError naming it, and nothing is
// paused, enqueued or audited.
func TestBadInputActsOnNothing(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	f, _ := newFleet(t, now)
	ops := fleet.Actor{By: "ops@host", Via: "cli"}
	ctx := t.Context()
	for _, c := range []struct {
		name     string
		do       func() error
		want     string
		notFound bool
	}{
		{"unknown job", func() error { _, err := f.Trigger(ctx, "weekly", ops); return err }, `no job "weekly"`, true},
		{"no job", func() error { _, err := f.Pause(ctx, "", "", ops); return err }, "no job named", false},
		{"long note", func() error { _, err := f.Pause(ctx, "hourly", strings.Repeat("x", 1001), ops); return err }, "at most 1000", false},
		{"future range", func() error {
			_, err := f.Backfill(ctx, "hourly", fleet.BackfillRequest{From: now, To: now.Add(time.Hour)}, ops)
			return err
		}, "in the future", false},
		{"range over the limit", func() error {
			_, err := f.Backfill(ctx, "hourly", fleet.BackfillRequest{From: now.Add(-5 * time.Hour), To: now, Limit: 3}, ops)
			return err
		}, "more than 3 occurrences", false},
		{"limit over the most", func() error {
			_, err := f.Backfill(ctx, "hourly", fleet.BackfillRequest{From: now.Add(-5 * time.Hour), To: now, Limit: fleet.MaxBackfill + 1}, ops)
			return err
		}, "want 1 to 10000", false},
		{"too many runs", func() error { _, err := f.History(ctx, "hourly", 5000); return err }, "want 1 to 1000 runs", false},
		{"not an occurrence", func() error { _, err := f.Occurrence(ctx, "hourly"); return err }, "not an occurrence id", false},
	} {
		err := c.do()
		var ie *fleet.InputError
		if !fleet.IsInput(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an input error saying %q", c.name, err, c.want)
		} else if errors.As(err, &ie) && ie.NotFound != c.notFound {
			t.Errorf("%s: NotFound = %v", c.name, ie.NotFound)
		}
	}
	if entries, err := f.Audit(ctx, 10); err != nil || len(entries) != 0 {
		t.Errorf("audit log after bad input: %+v, %v", entries, err)
	}
}

// TestNextFiresFollowJitterAndZone: a job's next fires carry their jitter (in the order
// the fleet fires them) and are read in the job's zone.
func TestNextFiresFollowJitterAndZone(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	f, _ := newFleet(t, now)
	d, err := f.Job(t.Context(), "nightly", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Fires) != 2 || !d.Fires[0].At.Equal(time.Date(2026, 12, 7, 1, 30, 0, 0, time.UTC)) || d.Fires[0].Zone != "CET" {
		t.Errorf("nightly's fires: %+v, want 02:30 CET = 01:30 UTC", d.Fires)
	}
	h, err := f.Job(t.Context(), "hourly", 5)
	if err != nil {
		t.Fatal(err)
	}
	for i, fire := range h.Fires {
		if fire.At.Before(fire.Scheduled) || fire.At.Sub(fire.Scheduled) >= 10*time.Minute || (i > 0 && fire.At.Before(h.Fires[i-1].At)) {
			t.Errorf("fire %d: %+v: want within its jitter after its instant, in order", i, fire)
		}
	}
}

// TestDriftMarksTheOddNodes: while the live nodes run different job sets, the nodes whose
// set most live nodes do not run are marked; without a majority, every live node is.
func TestDriftMarksTheOddNodes(t *testing.T) {
	f, q := newFleet(t, time.Now())
	marked := func() (map[string]bool, bool) {
		t.Helper()
		nodes, drift, err := f.Nodes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, n := range nodes {
			got[n.Name] = n.Drifted
		}
		return got, drift
	}
	for _, step := range []struct {
		node, set string
		want      map[string]bool
		drift     bool
	}{
		{"a", "one", map[string]bool{"a": false}, false},
		{"b", "one", map[string]bool{"a": false, "b": false}, false},
		{"c", "two", map[string]bool{"a": false, "b": false, "c": true}, true},
		{"d", "two", map[string]bool{"a": true, "b": true, "c": true, "d": true}, true},
	} {
		if err := q.Announce(t.Context(), queue.Node{Name: step.node, JobSetHash: step.set}); err != nil {
			t.Fatal(err)
		}
		got, drift := marked()
		if diff := cmp.Diff(step.want, got); diff != "" || drift != step.drift {
			t.Errorf("after %s announced set %s: drift %v, want %v; drifted (-want +got):\n%s", step.node, step.set, drift, step.drift, diff)
		}
	}
}
