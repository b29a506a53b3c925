package queue

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestPauseIsDecidedInTheClaim: while a job is paused, the claim script records each of its
// occurrences that falls due as skipped, with the pause's note, who and when, instead of
// handing it to the claimer; other jobs and a resumed job are claimed as before.
func TestPauseIsDecidedInTheClaim(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{Node: "node-a"})
		step := b.lease / 3
		jobs := sameShard("pausable-", 2)
		paused, other := jobs[0], jobs[1]
		now := b.now(t)
		d1, d2 := now.Add(step).Truncate(time.Millisecond), now.Add(2*step).Truncate(time.Millisecond)
		mustExpand(t, q, expansion(paused, d1, d2), expansion(other, d1))

		p := Pause{Note: "database migration", By: "ops@host", At: time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)}
		if err := q.Pause(t.Context(), paused, p); err != nil {
			t.Fatal(err)
		}
		got, err := q.Pauses(t.Context(), jobs)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]Pause{paused: p}, got); diff != "" {
			t.Errorf("Pauses (-want +got):\n%s", diff)
		}
		cl, _, at := b.claimDue(t, q, occID(other, d1), d1)
		if cl.Job != other {
			t.Fatalf("claimed %+v", cl)
		}
		recs := b.history(t, q, paused)
		want := []Record{{Occurrence: occID(paused, d1), Job: paused, Node: "node-a", ScheduledAt: d1.UTC(),
			Status: StatusSkipped, Error: "job paused by ops@host at 2026-12-05T01:00:00Z: database migration"}}
		if diff := cmp.Diff(want, recs, cmpopts.IgnoreFields(Record{}, "StartedAt", "EndedAt")); diff != "" {
			t.Errorf("history of the paused job (-want +got):\n%s", diff)
		}
		if len(recs) == 1 && (recs[0].StartedAt.Before(d1) || recs[0].StartedAt.After(at) || !recs[0].EndedAt.Equal(recs[0].StartedAt)) {
			t.Errorf("skipped at %v..%v, want at the claim, between %v and %v", recs[0].StartedAt, recs[0].EndedAt, d1, at)
		}
		if _, err := b.rdb.ZScore(t.Context(), q.keys(ShardOf(paused)).agenda(), occID(paused, d1)).Result(); err == nil {
			t.Error("the skipped occurrence is still in the agenda")
		}

		resumed, err := q.Resume(t.Context(), paused)
		if err != nil || !resumed {
			t.Fatalf("Resume = %v, %v; want true", resumed, err)
		}
		if again, err := q.Resume(t.Context(), paused); err != nil || again {
			t.Errorf("second Resume = %v, %v; want false: it was not paused any more", again, err)
		}
		b.claimDue(t, q, occID(paused, d2), d2)
	})
}

// TestTriggerAddsOnce: a trigger adds its occurrence, due now by Redis' clock, and the same
// trigger sent again adds nothing, also after the occurrence ran and left the agenda.
func TestTriggerAddsOnce(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		const job = "manual"
		now := b.now(t)
		id := occID(job, now) + "~a1"
		added, err := q.Trigger(t.Context(), job, id)
		if err != nil || added != 1 {
			t.Fatalf("Trigger = %v, %v; want it added", added, err)
		}
		cl, _, _ := b.claimDue(t, q, id, now)
		if cl.NotBefore.Before(now) || cl.Attempt != 1 {
			t.Errorf("claim %+v: want attempt 1, due when it was triggered (%v)", cl, now)
		}
		if ok := mustComplete(t, q, Completion{Claim: cl}); !ok[0] {
			t.Fatal("completion refused")
		}
		added, err = q.Trigger(t.Context(), job, id, occID(job, now)+"~a2")
		if err != nil || added != 1 {
			t.Errorf("the same trigger again with a new one = %v, %v; want only the new one added", added, err)
		}
		if c := b.mustClaim(t, q, ShardOf(job), 10); len(c.Claims) != 1 || c.Claims[0].Occurrence != occID(job, now)+"~a2" {
			t.Errorf("claimed %+v after the trigger ran; want the new trigger only", c.Claims)
		}
	})
}

// TestLastRuns: the latest record of each job, in one call; a job without one is absent.
// Records the caller passes over (an alert's runs) give way to the latest one before them,
// unless every recent record is passed over.
func TestLastRuns(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		push := func(job string, msgs ...string) {
			t.Helper()
			for _, msg := range msgs {
				if err := b.rdb.LPush(t.Context(), q.keys(ShardOf(job)).historyPrefix()+job, `{"job":"`+job+`","message":"`+msg+`"}`).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		push("with-runs", "first", "second")
		push("alerted", "run", "alert", "alert")
		push("only-alerts", "alert", "alert")
		jobs := []string{"with-runs", "without", "alerted", "only-alerts"}
		pass := func(r Record) bool { return r.Message == "alert" }
		got, err := q.LastRuns(t.Context(), jobs, pass)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]Record{
			"with-runs":   {Job: "with-runs", Message: "second"},
			"alerted":     {Job: "alerted", Message: "run"},
			"only-alerts": {Job: "only-alerts", Message: "alert"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("LastRuns (-want +got):\n%s", diff)
		}
		got, err = q.LastRuns(t.Context(), jobs, nil)
		if err != nil {
			t.Fatal(err)
		}
		want["alerted"] = Record{Job: "alerted", Message: "alert"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("LastRuns without pass (-want +got):\n%s", diff)
		}
	})
}
