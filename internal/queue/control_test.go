package queue

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPauseIsDecidedInTheClaim: while a job is paused, every claim of its occurrences
// carries the pause, on any node, so the claimer records it as skipped; other jobs and a
// resumed job are claimed as before.
func TestPauseIsDecidedInTheClaim(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
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
		b.clockTo(t, d1)
		c := b.mustClaim(t, q, ShardOf(paused), 10)
		if len(c.Claims) != 2 {
			t.Fatalf("claims %+v, want both occurrences due at %v", c.Claims, d1)
		}
		for _, cl := range c.Claims {
			switch cl.Job {
			case paused:
				if cl.Pause == nil || *cl.Pause != p {
					t.Errorf("claim of the paused job: pause %+v, want %+v", cl.Pause, p)
				}
			case other:
				if cl.Pause != nil {
					t.Errorf("claim of a job that is not paused carries a pause: %+v", cl.Pause)
				}
			}
		}

		resumed, err := q.Resume(t.Context(), paused)
		if err != nil || !resumed {
			t.Fatalf("Resume = %v, %v; want true", resumed, err)
		}
		if again, err := q.Resume(t.Context(), paused); err != nil || again {
			t.Errorf("second Resume = %v, %v; want false: it was not paused any more", again, err)
		}
		cl, _, _ := b.claimDue(t, q, occID(paused, d2), d2)
		if cl.Pause != nil {
			t.Errorf("claim after resume carries a pause: %+v", cl.Pause)
		}
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
func TestLastRuns(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		jobs := []string{"with-runs", "without"}
		for _, msg := range []string{"first", "second"} {
			if err := b.rdb.LPush(t.Context(), q.keys(ShardOf(jobs[0])).historyPrefix()+jobs[0], `{"job":"with-runs","message":"`+msg+`"}`).Err(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := q.LastRuns(t.Context(), jobs)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]Record{"with-runs": {Job: "with-runs", Message: "second"}}, got); diff != "" {
			t.Errorf("LastRuns (-want +got):\n%s", diff)
		}
	})
}
