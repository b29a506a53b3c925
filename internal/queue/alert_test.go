package queue

import (
	"slices"
	"testing"
	"time"
)

// Alerts, decided by the scripts: each is added by the step that records its event, once,
// and runs apart from its job's policies.

// alertID is cron.AlertID, which this package does not import.
func alertID(watched, kind string) string { return watched + "~alert-" + kind }

// agendaHas says whether occ is on job's agenda.
func (b *backend) agendaHas(t *testing.T, q *Queue, job, occ string) bool {
	t.Helper()
	n, err := b.rdb.ZScore(t.Context(), q.keys(ShardOf(job)).agenda(), occ).Result()
	return err == nil && n > 0
}

// occurrences are the ids of claims.
func occurrences(cs []Claim) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Occurrence)
	}
	slices.Sort(out)
	return out
}

// TestAlertOnFailure: the completion that records a failure for good adds its alert, once
// however often it is sent; a retry adds none; the alert is claimed although its job's
// overlap slot is taken and the job is paused, and it takes no slot itself.
func TestAlertOnFailure(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{Node: "n1"})
		const job = "fails"
		d, first := b.running(t, q, job, Policy{Overlap: OverlapSkip}, 3, b.lease/3)
		alert := alertID(first.Occurrence, "failure")

		// A retry with an alert adds none: the failure is not final.
		retry := Completion{Claim: first, Retry: true, Delay: time.Millisecond, Alert: alert,
			Record: &Record{Occurrence: first.Occurrence, Job: job, Status: StatusRetrying}}
		if ok := mustComplete(t, q, retry); !ok[0] {
			t.Fatal("retry refused")
		}
		if b.agendaHas(t, q, job, alert) {
			t.Fatal("a retry added the failure alert")
		}
		second, _, _ := b.claimDue(t, q, first.Occurrence, b.now(t).Add(time.Millisecond))
		fail := Completion{Claim: second, Alert: alert,
			Record: &Record{Occurrence: first.Occurrence, Job: job, Status: StatusFailed, Error: "exit status 1"}}
		for range 2 { // a re-sent call finds its marker
			if ok := mustComplete(t, q, fail); !ok[0] {
				t.Fatal("failure refused")
			}
		}
		if !b.agendaHas(t, q, job, alert) {
			t.Fatal("the failure alert was not added")
		}

		// Due with the next occurrence, which takes the job's slot: both run.
		b.clockTo(t, d[1])
		c := b.mustClaim(t, q, ShardOf(job), 10)
		if got := occurrences(c.Claims); !slices.Equal(got, []string{alert, occID(job, d[1])}) {
			t.Fatalf("claims %v, want the alert and %s", got, occID(job, d[1]))
		}
		ac, next := c.Claims[0], c.Claims[1]
		if ac.Occurrence != alert {
			ac, next = next, ac
		}
		running, _ := b.rdb.HGet(t.Context(), q.keys(ShardOf(job)).running(), job).Result()
		if running != next.Occurrence {
			t.Errorf("overlap slot held by %q, want %s", running, next.Occurrence)
		}
		// Its handler fails once; meanwhile the job is paused and its slot still taken: the
		// alert's retry runs all the same.
		if err := q.Pause(t.Context(), job, Pause{Note: "maintenance"}); err != nil {
			t.Fatal(err)
		}
		mustComplete(t, q, Completion{Claim: ac, Retry: true, Delay: time.Millisecond,
			Record: &Record{Occurrence: alert, Job: job, Status: StatusRetrying}})
		ac, _, _ = b.claimDue(t, q, alert, b.now(t).Add(time.Millisecond))
		if ac.Attempt != 2 || ac.Token <= next.Token {
			t.Errorf("the alert's retry has attempt %d and token %d, want 2 and above %d", ac.Attempt, ac.Token, next.Token)
		}
		// The alert's own failure raises nothing: the engine sends no alert with it.
		if ok := mustComplete(t, q, Completion{Claim: ac, Record: &Record{Occurrence: alert, Job: job, Status: StatusFailed}}); !ok[0] {
			t.Fatal("the alert's completion was refused")
		}
		if b.agendaHas(t, q, job, alert) || b.agendaHas(t, q, job, alertID(alert, "failure")) {
			t.Error("the alert is still on the agenda, or raised another")
		}
		b.wantHistory(t, q, job,
			first.Occurrence+" retrying: ",
			first.Occurrence+" failed: exit status 1",
			alert+" retrying: ",
			alert+" failed: ")
	})
}

// TestAlertOnMissed: an occurrence its catch-up policy records missed gets its alert in the
// same claim call, once; a job that does not alert on missed gets none; so does the record
// of occurrences passed over at expansion, once however many nodes send it.
func TestAlertOnMissed(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		step := b.lease / 4
		q := b.queue(Config{Away: 2 * step})
		jobs := sameShard("missed", 2)
		shard := ShardOf(jobs[0])
		d := b.dues(t, 4, step)
		var exps []Expansion
		for i, j := range jobs {
			x := policyExpansion(j, Policy{Overlap: OverlapAllow, Catchup: CatchupNone}, d[3].Add(step), d[:2]...)
			x.Alerts = Alerts{Missed: i == 0}
			exps = append(exps, x)
		}
		mustExpand(t, q, exps...)
		b.claimNothing(t, q, shard, d[0]) // the fleet is up, then goes away

		b.clockTo(t, d[3])
		if c := b.mustClaim(t, q, shard, 20); len(c.Claims) != 0 {
			t.Fatalf("claims %v: the missed ones' alerts are not due before the call that added them", occurrences(c.Claims))
		}
		want := []string{alertID(occID(jobs[0], d[0]), "missed"), alertID(occID(jobs[0], d[1]), "missed")}
		c := b.mustClaim(t, q, shard, 20)
		if got := occurrences(c.Claims); !slices.Equal(got, want) {
			t.Errorf("claims %v, want the alerts %v", got, want)
		}
		for _, cl := range c.Claims {
			mustComplete(t, q, Completion{Claim: cl, Record: &Record{Occurrence: cl.Occurrence, Job: cl.Job, Status: StatusSucceeded}})
		}
		if c := b.mustClaim(t, q, shard, 20); len(c.Claims) != 0 {
			t.Errorf("claims %v after the alerts ran", occurrences(c.Claims))
		}

		// Passed over at expansion, older than the window: one record, one alert.
		const job = "dropped"
		now := b.now(t)
		mustExpand(t, q, expansion(job, now.Add(time.Second)))
		until := now.Add(time.Hour).Truncate(time.Millisecond)
		x := expansion(job, until.Add(time.Second))
		first := occID(job, now.Add(2*time.Second))
		x.Dropped = &Record{Occurrence: first, Job: job, Status: StatusMissed, Error: "older than the catch-up window"}
		x.DroppedUntil = until
		x.Alerts = Alerts{Missed: true}
		x.DroppedAlert = alertID(first, "missed")
		for range 2 {
			mustExpand(t, q, x)
		}
		c = b.mustClaim(t, q, ShardOf(job), 20)
		if got := occurrences(c.Claims); !slices.Equal(got, []string{x.DroppedAlert}) {
			t.Errorf("claims %v, want the dropped record's alert", got)
		}
	})
}

// TestAlertLate: each occurrence added gets its late watch; a watch whose occurrence started
// leaves without a trace, one whose occurrence still waits (here for the overlap slot) is
// claimed when due and not ahead; a paused job's watch is silent.
func TestAlertLate(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{Node: "n1"})
		const job = "late"
		step := b.lease / 2
		late := step / 2
		d := b.dues(t, 3, step)
		x := policyExpansion(job, Policy{Overlap: OverlapBufferOne}, time.Time{}, d...)
		x.Alerts = Alerts{Failure: true, LateAfter: late}
		for _, id := range x.IDs {
			x.Late = append(x.Late, alertID(id, "late"))
		}
		for range 2 { // a second node's expansion adds nothing
			mustExpand(t, q, x)
		}
		shard := ShardOf(job)
		if n := b.zcard(t, q, shard); n != 6 {
			t.Fatalf("agenda holds %d entries, want 3 occurrences and their 3 watches", n)
		}
		for i, id := range x.Late {
			if s := b.score(t, q, id); !s.Equal(d[i].Add(late)) {
				t.Errorf("watch %s due at %v, want %v", id, s, d[i].Add(late))
			}
		}

		first, _, _ := b.claimDue(t, q, x.IDs[0], d[0]) // runs on: d[1] will wait
		b.clockTo(t, d[0].Add(late))
		b.claimNothing(t, q, shard, d[1])
		if b.agendaHas(t, q, job, x.Late[0]) {
			t.Error("the watch of an occurrence that started is still on the agenda")
		}
		b.clockTo(t, d[1])
		if c := b.mustClaim(t, q, shard, 10); len(c.Claims) != 0 {
			t.Fatalf("claims %v while %s runs (buffer_one)", occurrences(c.Claims), first.Occurrence)
		}
		// Asked ahead, the watch is not decided: d[1] may start in between.
		now := b.now(t)
		if c, err := q.Claim(t.Context(), []int{shard}, 10, late, now.Add(q.CallTimeout()), nil); err != nil || len(c.Claims) != 0 {
			t.Fatalf("claims %v, %v ahead of the watch", occurrences(c.Claims), err)
		}
		watch, _, _ := b.claimDue(t, q, x.Late[1], d[1].Add(late))
		if watch.Job != job {
			t.Errorf("the watch's job is %q", watch.Job)
		}

		// The job is paused: d[2]'s watch is silent (d[2] itself is skipped when it runs).
		if err := q.Pause(t.Context(), job, Pause{}); err != nil {
			t.Fatal(err)
		}
		mustComplete(t, q, Completion{Claim: first, Record: &Record{Occurrence: first.Occurrence, Job: job, Status: StatusSucceeded}})
		b.clockTo(t, d[2].Add(late))
		c := b.mustClaim(t, q, shard, 10)
		if len(c.Claims) != 0 {
			t.Errorf("claims %v of a paused job", occurrences(c.Claims))
		}
		for _, r := range b.history(t, q, job) {
			if r.Occurrence == x.Late[0] || r.Occurrence == x.Late[2] {
				t.Errorf("a silent watch left a record: %+v", r)
			}
		}
		if b.agendaHas(t, q, job, x.Late[2]) {
			t.Error("the paused job's watch is still on the agenda")
		}
	})
}
