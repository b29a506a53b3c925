//go:build faults

package main_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/redisconn"
	"github.com/cronfleet/cronfleet/internal/redistest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// Scenarios of faults of Redis: restarted with and without persistence, failed over by
// Sentinel and by Cluster, a key of the wrong type in one agenda shard, scripts refused by
// an ACL, and out of memory. Each checks what docs/reliability.md promises under its fault,
// and no more: where the docs leave an occurrence to the job's catch-up policy, the scenario
// reports the figure and checks that the policy, not chance, decided it.

const (
	// redisJobs is the job count of the scenarios that fault the whole of Redis: every job
	// is hit, so a few show it.
	redisJobs = 4
	// redisLease is their lease: short, so that the guard's hold (a lease) and the settle
	// (at most a lease) end within the scenario's budget.
	redisLease = 2 * time.Second
	// catchupAll makes every occurrence that fell due while Redis was away run once it is
	// back (docs/scheduling.md): the failover scenarios then promise that nothing is missed,
	// however long the failover takes, and assert it.
	catchupAll = "\n  catchup = \"all\""
	// backoffLongest is the longest a node waits between two tries of a failing call (the
	// engine's retryLongest, 1.6s, plus its jitter of a quarter): how late after Redis is
	// back every loop of a node has asked again.
	backoffLongest = 2 * time.Second
	// inFlight is when, from the first whole second of a scenario, its fault strikes:
	// after three seconds of runs, a fifth of a second into the runs of the fourth (they
	// last 400ms), so that runs are in flight, to be renewed and recorded across it.
	inFlight = 3200 * time.Millisecond
)

// redisJobFile is the job file of those scenarios: redisJobs jobs every second, each run
// 400ms, retried or taken over up to five times, overlapping allowed (retry5), plus extra.
func (s *suite) redisJobFile(extra string) string {
	return s.probeJobs(redisJobs, "* * * * * *", 400*time.Millisecond, redisLease, retry5+extra)
}

// waitDecided waits until every occurrence of jobs due in [from, to] every step is decided
// (see undecided): after a fault that the catch-up policy answers with missed records,
// waiting for dones alone would wait out the timeout.
func (f *faultFleet) waitDecided(jobs []string, from, to time.Time, step, timeout time.Duration) {
	f.t.Helper()
	var open []string
	ok := testwait.Until(timeout, throttled(func() bool {
		open = f.undecided(jobs, from, to, step)
		return len(open) == 0
	}))
	if !ok {
		f.t.Logf("%d occurrences neither done nor recorded after %s, first %v", len(open), timeout, open[:min(len(open), 10)])
	}
}

// undecided returns the occurrences of jobs due in [from, to] every step that have neither
// an accepted done in the sink nor a history record that ends them (missed, skipped,
// failed, abandoned): those still to run, or lost without a trace. Without f.rdb only dones
// count.
func (f *faultFleet) undecided(jobs []string, from, to time.Time, step time.Duration) []string {
	ended := map[string]bool{}
	for _, w := range f.s.writes(f.t) {
		if w.accepted && w.kind == "done" {
			ended[w.occurrence] = true
		}
	}
	for _, job := range jobs {
		for _, r := range f.history(job) {
			switch r.Status {
			case queue.StatusMissed, queue.StatusSkipped, queue.StatusFailed, queue.StatusAbandoned:
				ended[r.Occurrence] = true
			}
		}
	}
	var open []string
	for _, job := range jobs {
		for at := from; !at.After(to); at = at.Add(step) {
			if occ := cron.OccurrenceID(job, at); !ended[occ] {
				open = append(open, occ)
			}
		}
	}
	return open
}

// tokenFigures is what the sink's log says of the fencing tokens around a fault of Redis.
type tokenFigures struct {
	backwards int // writes of an occurrence with a smaller token than an earlier write of it
	below     int // claims after the fault whose token is not above every one of their job's before it
	unordered int // dones whose token is below an earlier-due occurrence's, with no re-claim to explain it
	explained int // dones out of due order because the earlier occurrence was claimed again later
}

func (tf tokenFigures) String() string {
	return fmt.Sprintf("tokens: %d backwards, %d not above the fault's, %d out of due order (%d explained by a re-claim)",
		tf.backwards, tf.below, tf.unordered, tf.explained)
}

// ok says whether the tokens kept every promise.
func (tf tokenFigures) ok() bool { return tf.backwards == 0 && tf.below == 0 && tf.unordered == 0 }

// jobToken names a claim: tokens are unique per job only (two jobs claimed in the same
// millisecond share one).
type jobToken struct {
	job   string
	token int64
}

// checkTokens checks the promises of docs/reliability.md "Fencing tokens" on the sink's log,
// which holds every write, accepted or refused, in Redis' order:
//
//   - per occurrence, a later write never carries a smaller token than an earlier one;
//   - per job, every claim made after the fault (its first write after settled) has a
//     larger token than every claim made before it (first write before lost), even when
//     Redis forgot those;
//   - per job, the accepted dones of successive occurrences carry growing tokens in due
//     order, except where an earlier occurrence was claimed again after a later one (a
//     takeover or a retry after the fault): a token orders claims, not due times. Such a
//     re-claim shows as a done token that is not the occurrence's first in the sink, a
//     history record of a later attempt, or a run that began after the later occurrence's.
func (f *faultFleet) checkTokens(ws []sinkWrite, lost, settled time.Time) tokenFigures {
	f.t.Helper()
	var tf tokenFigures
	largest := map[string]int64{}     // occurrence → largest token written so far
	first := map[jobToken]time.Time{} // claim → its first write
	firstTok := map[string]int64{}    // occurrence → the token of its first write
	done := map[string]sinkWrite{}    // occurrence → its accepted done
	due := map[string]time.Time{}
	byJob := map[string][]string{} // job → its occurrences with a done
	for _, w := range ws {
		job, at, err := cron.ParseOccurrenceID(w.occurrence)
		if err != nil {
			f.t.Errorf("sink write of occurrence %q: %v", w.occurrence, err)
			continue
		}
		if l, ok := largest[w.occurrence]; ok && w.token < l {
			tf.backwards++
			f.t.Errorf("%s: write with token %d after one with %d: %+v", w.occurrence, w.token, l, w)
		}
		largest[w.occurrence] = max(largest[w.occurrence], w.token)
		if _, ok := firstTok[w.occurrence]; !ok {
			firstTok[w.occurrence] = w.token
		}
		if k := (jobToken{job, w.token}); first[k].IsZero() {
			first[k] = w.at
		}
		if w.accepted && w.kind == "done" {
			if _, ok := done[w.occurrence]; !ok {
				byJob[job] = append(byJob[job], w.occurrence)
			}
			done[w.occurrence], due[w.occurrence] = w, at
		}
	}

	before := map[string]int64{} // job → its largest token first written before the fault
	for k, at := range first {
		if at.Before(lost) {
			before[k.job] = max(before[k.job], k.token)
		}
	}
	for k, at := range first {
		if at.After(settled) && k.token <= before[k.job] {
			tf.below++
			f.t.Errorf("job %s: token %d first written at %s, after the fault, is not above %d handed out before it",
				k.job, k.token, at.Format(time.RFC3339Nano), before[k.job])
		}
	}

	for job, occs := range byJob {
		slices.SortFunc(occs, func(a, b string) int { return due[a].Compare(due[b]) })
		var hist []queue.Record // read once, when a done is out of order
		for i, cur := range occs {
			var unexplained []string
			out := false
			for _, prev := range occs[:i] {
				if done[prev].token < done[cur].token {
					continue
				}
				out = true
				reclaimed := firstTok[prev] != done[prev].token ||
					first[jobToken{job, done[prev].token}].After(first[jobToken{job, done[cur].token}])
				if !reclaimed {
					if hist == nil {
						hist = f.history(job)
					}
					reclaimed = slices.ContainsFunc(hist, func(r queue.Record) bool {
						return r.Occurrence == prev && r.FencingToken == done[prev].token && r.Attempt > 1
					})
				}
				if !reclaimed {
					unexplained = append(unexplained, fmt.Sprintf("%s (token %d)", prev, done[prev].token))
				}
			}
			switch {
			case len(unexplained) > 0:
				tf.unordered++
				f.t.Errorf("%s: done with token %d, not above the dones of %v, due before it and claimed once",
					cur, done[cur].token, unexplained)
			case out:
				tf.explained++
			}
		}
	}
	return tf
}

// scenarioRestartAOF kills Redis (SIGKILL) under the fleet and starts it again from its
// append-only file, fsynced at every write: it comes back with everything it acknowledged,
// so no node may see a loss, nothing may run twice, and with catch-up "all" nothing may be
// missed, however long the restart took.
func scenarioRestartAOF(t *testing.T, s *suite) {
	restartRedis(t, s, true)
}

// scenarioRestartEmpty kills Redis and starts it again without persistence: it comes back
// empty. The lost-state guard must see it, hold claims for a lease, keep finished runs
// finished and tokens growing; what fell due from the loss to the end of the hold is the
// default catch-up policy's ("latest": the newest runs, the others are recorded missed).
func scenarioRestartEmpty(t *testing.T, s *suite) {
	restartRedis(t, s, false)
}

// restartRedis is the two restart scenarios: aof says whether Redis persists.
func restartRedis(t *testing.T, s *suite, aof bool) {
	var args []string
	extra := ""
	if aof {
		args = []string{"--appendonly", "yes", "--appendfsync", "always"}
		extra = catchupAll
	}
	srv := redistest.Start(t, args...)
	f := s.fleetOf(t, s.redisJobFile(extra))
	f.rdb = srv.Client(t)
	for _, n := range []string{"a", "b", "c"} {
		f.start(n, srv.URL())
	}
	from := nextSecond(time.Now(), time.Second)
	<-time.After(time.Until(from.Add(inFlight))) // the fault's schedule
	srv.Kill()
	killed := time.Now()
	srv.Restart()
	restarted := time.Now()

	to := nextSecond(restarted, 6*time.Second)
	jobs := jobNames(redisJobs)
	f.waitDecided(jobs, from, to, time.Second, 40*time.Second)
	// A claim after the guard's hold (a lease from the first call after the restart) is
	// surely a new one: a claim made before the kill starts its run at its due time, within
	// the claim's lead of a quarter second.
	tf := f.checkTokens(f.s.writes(t), killed, restarted.Add(redisLease+backoffLongest))
	fg := f.checkJobs(jobs, from, to, time.Second, nil)
	if !aof {
		f.waitLogged("Redis lost state", 20*time.Second)
	}
	logs := f.logs()
	fg.leaked = f.stopAll()
	outage := restarted.Sub(killed).Round(time.Millisecond)
	if aof {
		fg.note = fmt.Sprintf("down %s; catch-up all; %s", outage, tf)
	} else {
		fg.note = fmt.Sprintf("down %s; the guard held claims a lease and catch-up latest ran the newest of what fell due meanwhile, the others recorded missed; %s", outage, tf)
	}
	s.report(t, fg)
	if fg.stale != 0 || !tf.ok() {
		t.Errorf("stale writes %d, %s: want none", fg.stale, tf)
	}
	for name, log := range logs {
		// With every write fsynced before it is acknowledged, nothing a node saw is lost.
		want := 0
		if !aof {
			want = 1
		}
		if c := strings.Count(log, "Redis lost state"); c != want {
			t.Errorf("node %s logged the loss of state %d times, want %d", name, c, want)
		}
	}
	if aof {
		if fg.missed != 0 {
			t.Errorf("missed %d with catch-up all and nothing lost: want 0", fg.missed)
		}
		return
	}
	// What the guard and "latest" may leave missed fell due from the last sound state
	// (at most a second of calls before the kill) to the end of the hold (a lease after
	// the first call after the restart), and each has its missed record.
	f.checkMissedWithin(fg.missedIDs, killed.Add(-2*time.Second), restarted.Add(backoffLongest+redisLease+time.Second))
}

// checkMissedWithin checks that every occurrence in missed fell due in [from, to], the
// window the fault and the docs allow, and that Redis recorded it as missed: the catch-up
// policy decided it, nothing lost it silently.
func (f *faultFleet) checkMissedWithin(missed []string, from, to time.Time) {
	f.t.Helper()
	hist := map[string][]queue.Record{}
	for _, occ := range missed {
		job, at, err := cron.ParseOccurrenceID(occ)
		if err != nil {
			f.t.Errorf("missed %q: %v", occ, err)
			continue
		}
		if at.Before(from) || at.After(to) {
			f.t.Errorf("%s missed, due outside of the fault's window [%s, %s]", occ, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
		}
		if _, ok := hist[job]; !ok {
			hist[job] = f.history(job)
		}
		if !slices.ContainsFunc(hist[job], func(r queue.Record) bool { return r.Occurrence == occ && r.Status == queue.StatusMissed }) {
			f.t.Errorf("%s missed without a missed record in its history", occ)
		}
	}
}

// waitLogged waits until every node has logged what: a log line is written a moment after
// the event it tells of.
func (f *faultFleet) waitLogged(what string, timeout time.Duration) {
	f.t.Helper()
	testwait.For(f.t, timeout, "every node to log "+strconv.Quote(what), throttled(func() bool {
		for _, n := range f.nodes {
			if !strings.Contains(n.Log(), what) {
				return false
			}
		}
		return true
	}))
}

// logs returns every node's log by name, read before the nodes stop: what they say while
// stopping is not what the scenario checks.
func (f *faultFleet) logs() map[string]string {
	out := map[string]string{}
	for name, n := range f.nodes {
		out[name] = n.Log()
	}
	return out
}

// scenarioSentinel kills the master of a Sentinel set under the fleet: the sentinels
// promote the replica and the nodes follow them. With catch-up "all", nothing is missed and
// nothing runs twice; tokens keep growing whether or not the replica missed the master's
// last writes (then the guard holds claims for a lease).
func scenarioSentinel(t *testing.T, s *suite) {
	set := redistest.StartSentinel(t)
	f := s.fleetOf(t, s.redisJobFile(catchupAll))
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: set.Name(), SentinelAddrs: set.SentinelAddrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	f.rdb = rdb
	for _, n := range []string{"a", "b", "c"} {
		f.start(n, set.URL())
	}
	from := nextSecond(time.Now(), time.Second)
	<-time.After(time.Until(from.Add(inFlight))) // the fault's schedule
	master := set.Master()
	master.Kill()
	killed := time.Now()
	promoted := set.WaitFailover(t, master, 30*time.Second)
	failedOver := time.Now()
	t.Logf("failover from %s to %s took %s", master.Addr(), promoted.Addr(), failedOver.Sub(killed).Round(time.Millisecond))
	f.checkFailover(from, killed, failedOver, fmt.Sprintf("failover %s", failedOver.Sub(killed).Round(100*time.Millisecond)))
}

// checkFailover is the end of the failover scenarios: it waits for the occurrences due up to
// a few seconds after the failover, checks them and the tokens, and reports.
func (f *faultFleet) checkFailover(from, killed, failedOver time.Time, what string) {
	f.t.Helper()
	to := nextSecond(failedOver, 5*time.Second)
	jobs := jobNames(redisJobs)
	f.waitDecided(jobs, from, to, time.Second, 40*time.Second)
	// Claims after the settle (at most a lease) or the guard's hold (a lease) that a
	// failover may start are new ones.
	tf := f.checkTokens(f.s.writes(f.t), killed, failedOver.Add(redisLease+backoffLongest))
	fg := f.checkJobs(jobs, from, to, time.Second, nil)
	lost := 0
	for _, n := range f.nodes {
		if strings.Contains(n.Log(), "Redis lost state") {
			lost++
		}
	}
	fg.leaked = f.stopAll()
	fg.note = fmt.Sprintf("%s; %d of %d nodes saw a loss; catch-up all; %s", what, lost, len(f.nodes), tf)
	f.s.report(f.t, fg)
	if fg.stale != 0 || fg.missed != 0 || !tf.ok() {
		f.t.Errorf("stale writes %d, missed %d, %s: want none", fg.stale, fg.missed, tf)
	}
}

// scenarioCluster kills the Cluster master that owns job-000's agenda shard under the
// fleet: the Cluster promotes its replica, and the nodes find it. With catch-up "all",
// nothing is missed and nothing runs twice; tokens keep growing.
func scenarioCluster(t *testing.T, s *suite) {
	c := redistest.StartClusterWithReplicas(t, 3, 1)
	f := s.fleetOf(t, s.redisJobFile(catchupAll))
	rdb, _, err := redisconn.Open(redisconn.Settings{URL: c.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	f.rdb = rdb
	slotOf := func(job string) int {
		return redistest.KeySlot(fmt.Sprintf("{cf:faults:%d}:agenda", queue.ShardOf(job)))
	}
	victim := c.SlotOwner(t, slotOf("job-000"))
	hit := 0 // jobs whose shard the victim owns
	for _, job := range jobNames(redisJobs) {
		if c.SlotOwner(t, slotOf(job)) == victim {
			hit++
		}
	}
	for _, n := range []string{"a", "b", "c"} {
		f.start(n, c.URL())
	}
	from := nextSecond(time.Now(), time.Second)
	<-time.After(time.Until(from.Add(inFlight))) // the fault's schedule
	killed := time.Now()
	promoted := c.KillMaster(t, victim)
	failedOver := time.Now()
	t.Logf("failover from node %d to node %d took %s", victim, promoted, failedOver.Sub(killed).Round(time.Millisecond))
	f.checkFailover(from, killed, failedOver, fmt.Sprintf("failover %s, %d of %d jobs' shards on the dead master",
		failedOver.Sub(killed).Round(100*time.Millisecond), hit, redisJobs))
}

// badKeyJobs is the job count of the wrong-type scenario: enough that the jobs spread over
// most shards, and the faulty one's neighbours show that they run on.
const badKeyJobs = 16

// scenarioBadKey writes a string over one agenda shard's sorted set: that shard's jobs stop,
// the others run on, on time; each node names the key once, and the shard's jobs run again
// once the key is deleted. The SET replaced the shard's agenda, so what was planned in it
// is gone: the shard's jobs come back from their next planning, up to a horizon later.
func scenarioBadKey(t *testing.T, s *suite) {
	srv := redistest.Start(t)
	f := s.fleetOf(t, s.probeJobs(badKeyJobs, "* * * * * *", 200*time.Millisecond, redisLease, retry5))
	f.rdb = srv.Client(t)
	f.start("a", srv.URL())
	f.start("b", srv.URL())

	shard := queue.ShardOf("job-000")
	var bad, others []string
	shards := map[int]bool{}
	for _, job := range jobNames(badKeyJobs) {
		shards[queue.ShardOf(job)] = true
		if queue.ShardOf(job) == shard {
			bad = append(bad, job)
		} else {
			others = append(others, job)
		}
	}
	agenda := fmt.Sprintf("{cf:faults:%d}:agenda", shard)
	testwait.For(t, 20*time.Second, "every job to run", throttled(func() bool {
		ran := map[string]bool{}
		for _, w := range s.writes(t) {
			job, _, _ := cron.ParseOccurrenceID(w.occurrence)
			ran[job] = true
		}
		return len(ran) == badKeyJobs
	}))
	if err := f.rdb.Set(t.Context(), agenda, "not a sorted set", 0).Err(); err != nil {
		t.Fatal(err)
	}
	broken := time.Now()
	<-time.After(6 * time.Second) // the fault's schedule: six seconds with the bad key
	if err := f.rdb.Del(t.Context(), agenda).Err(); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	var back time.Time // the due time of the first done of the shard's after the fix
	testwait.For(t, 25*time.Second, "the bad shard's jobs to run again", throttled(func() bool {
		for _, w := range s.writes(t) {
			job, at, err := cron.ParseOccurrenceID(w.occurrence)
			if err == nil && w.accepted && w.kind == "done" && slices.Contains(bad, job) && at.After(fixed) {
				back = at
				return true
			}
		}
		return false
	}))

	from, to := nextSecond(broken, 0), nextSecond(fixed, 2*time.Second)
	f.waitDecided(others, from, to, time.Second, 30*time.Second)
	fg := f.checkJobs(others, from, to, time.Second, nil)
	late := f.latest(others, from, to)
	// The SET took the shard's planned occurrences with it; once the shard answers, its
	// jobs are planned again from when the nodes saw it fail (plus the margin of a claim made
	// ahead before it), so what fell due from there is run or recorded missed. What fell due
	// between the SET and the nodes' first failing call (a second or two) cannot be told
	// from what was run then, and is left: reported, not asserted.
	kept := nextSecond(broken, 3*time.Second)
	f.waitDecided(bad, kept, to, time.Second, 30*time.Second)
	lost := len(f.undecided(bad, kept, to, time.Second))
	gone := len(f.undecided(bad, from, kept.Add(-time.Second), time.Second))
	logs := f.logs()
	fg.leaked = f.stopAll()
	fg.note = fmt.Sprintf("%d jobs on %d shards, %d on the bad one; the others at most %s late; the bad shard's back %s after the fix, %d of its occurrences due in the fault's first %s gone with the agenda",
		badKeyJobs, len(shards), len(bad), late.Round(time.Millisecond), back.Sub(fixed).Round(100*time.Millisecond), gone, kept.Sub(broken).Round(100*time.Millisecond))
	s.report(t, fg)
	if lost != 0 {
		t.Errorf("%d occurrences of the bad shard due from %s on were neither run nor recorded: the shard was not planned again", lost, kept.Format(time.TimeOnly))
	}
	if fg.stale != 0 || fg.missed != 0 {
		t.Errorf("stale writes %d, missed %d of the healthy shards: want 0", fg.stale, fg.missed)
	}
	// A second is the scale of the bad shard's backoff (up to 1.6s): a healthy shard held
	// up by it would be that late. Unfaulted, they start within milliseconds, and within
	// tens of them with every core of the machine busy besides.
	if late >= time.Second {
		t.Errorf("a run of a healthy shard began %s after its due time: want less than a second", late.Round(time.Millisecond))
	}
	for name, log := range logs {
		if c := strings.Count(log, "an agenda shard refused calls"); c != 1 || !strings.Contains(log, agenda) {
			t.Errorf("node %s logged the shard's fault %d times (naming %s: %v), want once", name, c, agenda, strings.Contains(log, agenda))
		}
		if !strings.Contains(log, "an agenda shard answers again") {
			t.Errorf("node %s did not log that the shard answers again", name)
		}
		for _, outage := range []string{"redis unreachable", "redis refused the call"} {
			if strings.Contains(log, outage) {
				t.Errorf("node %s took the shard's fault for an outage of Redis: %q", name, outage)
			}
		}
	}
}

// latest returns how late the latest first write of an occurrence of jobs due in [from, to]
// came after its due time: how on time a fault left the jobs it should not touch.
func (f *faultFleet) latest(jobs []string, from, to time.Time) time.Duration {
	var late time.Duration
	seen := map[string]bool{}
	for _, w := range f.s.writes(f.t) {
		job, at, err := cron.ParseOccurrenceID(w.occurrence)
		if err != nil || seen[w.occurrence] || !slices.Contains(jobs, job) || at.Before(from) || at.After(to) {
			continue
		}
		seen[w.occurrence] = true
		late = max(late, w.at.Sub(at))
	}
	return late
}

// refusal is a fault that makes Redis refuse the fleet's scripts while it stays up.
type refusal struct {
	kind    string // Redis' error code, which the nodes' log line names
	inject  func(ctx context.Context, admin *redis.Client) error
	restore func(ctx context.Context, admin *redis.Client) error
}

// scenarioACL takes EVALSHA and EVAL from Redis' default user, the fleet's, for a while:
// every script is refused with NOPERM. The test's own client is another user, and the sink
// another server.
func scenarioACL(t *testing.T, s *suite) {
	refused(t, s, refusal{
		kind: "NOPERM",
		inject: func(ctx context.Context, admin *redis.Client) error {
			return admin.Do(ctx, "acl", "setuser", "default", "-evalsha", "-eval").Err()
		},
		restore: func(ctx context.Context, admin *redis.Client) error {
			return admin.Do(ctx, "acl", "setuser", "default", "+evalsha", "+eval").Err()
		},
	})
}

// scenarioOOM sets Redis' maxmemory to one byte for a while, under the noeviction policy the
// runner requires: every script's first write is refused with OOM.
func scenarioOOM(t *testing.T, s *suite) {
	refused(t, s, refusal{
		kind: "OOM",
		inject: func(ctx context.Context, admin *redis.Client) error {
			return admin.ConfigSet(ctx, "maxmemory", "1").Err()
		},
		restore: func(ctx context.Context, admin *redis.Client) error {
			return admin.ConfigSet(ctx, "maxmemory", "0").Err()
		},
	})
}

// refusedFor is how long the refusal scenarios measure the calls the nodes make while Redis
// refuses them: long enough for the nodes' backoff to reach its longest wait.
const refusedFor = 5 * time.Second

// hotLoop is the most commands a second a node may send to a Redis that refuses them: far
// above what backing off sends (a few a second), far below a loop that does not back off
// (thousands). A functional bound, not a speed benchmark.
const hotLoop = 200

// refused runs the fleet on a Redis that refuses its scripts for a while (rf): each node
// logs the refusal once, naming Redis' error code, backs off instead of looping, and once
// Redis accepts the scripts again runs what falls due, once. What fell due while Redis
// refused is the catch-up policy's (latest: the newest runs, the others are recorded
// missed).
func refused(t *testing.T, s *suite, rf refusal) {
	srv := redistest.Start(t, "--maxmemory-policy", "noeviction")
	ctx := context.WithoutCancel(t.Context())
	// The test's client is a user of its own, untouched by the ACL scenario's change.
	if err := srv.Client(t).Do(ctx, "acl", "setuser", "faults-admin", "on", ">faults-admin", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER faults-admin: %v", err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "faults-admin", Password: "faults-admin"})
	t.Cleanup(func() { _ = admin.Close() })
	f := s.fleetOf(t, s.redisJobFile(""))
	f.rdb = admin
	f.start("a", srv.URL())
	f.start("b", srv.URL())
	nodes := len(f.nodes)

	from := nextSecond(time.Now(), time.Second)
	<-time.After(time.Until(from)) // the fault's schedule: the measure before it begins with the runs' first second
	c0, t0 := f.load(ctx, admin), time.Now()
	<-time.After(time.Until(from.Add(inFlight))) // the fault's schedule
	base := f.load(ctx, admin).rate(c0, time.Since(t0), nodes)
	if err := rf.inject(ctx, admin); err != nil {
		t.Fatalf("inject %s: %v", rf.kind, err)
	}
	injected := time.Now()
	f.waitLogged("redis refused the call", 10*time.Second)
	c1, t1 := f.load(ctx, admin), time.Now()
	<-time.After(refusedFor) // the fault's schedule: the measure of the calls refused
	during := f.load(ctx, admin).rate(c1, time.Since(t1), nodes)
	if err := rf.restore(ctx, admin); err != nil {
		t.Fatalf("restore after %s: %v", rf.kind, err)
	}
	restored := time.Now()
	f.waitLogged("redis answering again", 10*time.Second)

	// From a backoff after the restore on, every loop of every node has asked again: what
	// falls due then was planned in time and is claimed in time, so it must run.
	after := nextSecond(restored, backoffLongest)
	to := after.Add(4 * time.Second)
	jobs := jobNames(redisJobs)
	f.waitDecided(jobs, from, to, time.Second, 30*time.Second)
	fg := f.checkJobs(jobs, from, to, time.Second, nil)
	logs := f.logs()
	fg.leaked = f.stopAll()
	fg.note = fmt.Sprintf("refused %s for %s: per node %s (before: %s); what fell due meanwhile: catch-up latest",
		rf.kind, restored.Sub(injected).Round(100*time.Millisecond), during, base)
	s.report(t, fg)
	if fg.stale != 0 {
		t.Errorf("stale writes %d: want 0", fg.stale)
	}
	var afterwards []string
	for _, occ := range fg.missedIDs {
		if _, at, err := cron.ParseOccurrenceID(occ); err == nil && !at.Before(after) {
			afterwards = append(afterwards, occ)
		}
	}
	if len(afterwards) > 0 {
		t.Errorf("missed %v, due after Redis took the scripts again", afterwards)
	}
	f.checkMissedWithin(fg.missedIDs, injected.Add(-time.Second), after)
	if during.commands > hotLoop {
		t.Errorf("%.0f commands a second per node while Redis refused them: a hot loop (want at most %d)", during.commands, hotLoop)
	}
	for name, log := range logs {
		var lines []string
		for l := range strings.Lines(log) {
			if strings.Contains(l, "redis refused the call") {
				lines = append(lines, strings.TrimSpace(l))
			}
		}
		if len(lines) != 1 || !strings.Contains(lines[0], rf.kind) {
			t.Errorf("node %s logged the refusal %d times, want once naming %s: %q", name, len(lines), rf.kind, lines)
		}
	}
}

// redisLoad is what Redis counted of the calls it took: all commands, those it processed and
// those it refused before running them (an ACL, OOM of a command that writes), which INFO
// counts apart, so that a node in a hot loop shows whether Redis runs its calls or not; and
// of those the script calls (EVALSHA, EVAL), one per shard a node asks, which is how the
// nodes talk to Redis. A script's own commands count among the commands too.
type redisLoad struct {
	commands, scripts int64
}

// loadRate is a load per second per node.
type loadRate struct {
	commands, scripts float64
}

func (r loadRate) String() string {
	return fmt.Sprintf("%.0f commands/s, %.0f scripts/s", r.commands, r.scripts)
}

// rate is the load from since to l, over d, per second per node.
func (l redisLoad) rate(since redisLoad, d time.Duration, nodes int) loadRate {
	per := d.Seconds() * float64(nodes)
	return loadRate{commands: float64(l.commands-since.commands) / per, scripts: float64(l.scripts-since.scripts) / per}
}

// load reads Redis' load so far from INFO stats and commandstats. The scenario's own INFO
// calls count too; they are a few.
func (f *faultFleet) load(ctx context.Context, admin *redis.Client) redisLoad {
	f.t.Helper()
	info, err := admin.Info(ctx, "stats", "commandstats").Result()
	if err != nil {
		f.t.Fatalf("INFO: %v", err)
	}
	count := func(line, v string) int64 {
		c, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			f.t.Fatalf("INFO %q: %v", line, err)
		}
		return c
	}
	var l redisLoad
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			l.commands += count(line, v)
		}
		name, stats, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		script := name == "cmdstat_evalsha" || name == "cmdstat_eval"
		for field := range strings.SplitSeq(stats, ",") {
			k, v, _ := strings.Cut(field, "=")
			switch {
			case k == "rejected_calls":
				l.commands += count(line, v)
				if script {
					l.scripts += count(line, v)
				}
			case k == "calls" && script:
				l.scripts += count(line, v)
			}
		}
	}
	return l
}
