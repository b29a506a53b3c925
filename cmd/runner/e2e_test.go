package main_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/redistest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// The tests in this file run real runner processes against a real redis-server and count
// handler starts per occurrence id: the invariants of shared/architecture.md, end to end.

func buildRunner(t *testing.T) string {
	t.Helper()
	root, err := fleettest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := fleettest.BuildRunner(root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// buildPlugin builds the package pkg (relative to the module's root) into the binary out.
func buildPlugin(t *testing.T, pkg, out string) {
	t.Helper()
	root, err := fleettest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := fleettest.Build(root, pkg, out); err != nil {
		t.Fatal(err)
	}
}

// fleet is a set of runner nodes sharing one Redis and one job file.
type fleet struct {
	t     *testing.T
	bin   string
	redis *redistest.Server // nil on a Sentinel set or a Cluster
	url   string            // the nodes' -redis
	rdb   redis.UniversalClient
	dir   string
	conf  string
	runs  string
	nodes map[string]*fleettest.Node
	queue map[string]*queue.Queue // by namespace, for reading history
}

func newFleet(t *testing.T, hcl func(runs string) string, redisArgs ...string) *fleet {
	t.Helper()
	srv := redistest.Start(t, redisArgs...)
	f := newFleetOn(t, srv.URL(), srv.Client(t), hcl)
	f.redis = srv
	return f
}

// newFleetOn is a fleet on the Redis deployment at url; rdb reads its state for the test.
func newFleetOn(t *testing.T, url string, rdb redis.UniversalClient, hcl func(runs string) string) *fleet {
	t.Helper()
	f := &fleet{t: t, bin: buildRunner(t), url: url, rdb: rdb, dir: t.TempDir(), nodes: map[string]*fleettest.Node{}, queue: map[string]*queue.Queue{}}
	f.runs = filepath.Join(f.dir, "runs.log")
	f.conf = filepath.Join(f.dir, "jobs.hcl")
	if err := os.WriteFile(f.conf, []byte(hcl(f.runs)), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fleet) start(name string, args ...string) *fleettest.Node {
	f.t.Helper()
	n, err := fleettest.StartNode(fleettest.NodeConfig{
		Bin: f.bin, Name: name, Configs: []string{f.conf}, RedisURL: f.url,
		LogPath: filepath.Join(f.dir, name+".log"), Args: args,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.nodes[name] = n
	f.t.Cleanup(func() {
		if err := n.Stop(15 * time.Second); err != nil {
			f.t.Logf("node %s: %v", name, err)
		}
		if f.t.Failed() {
			f.t.Logf("log of node %s:\n%s", name, tailOf(n.Log(), 60))
		}
	})
	testwait.For(f.t, 20*time.Second, "node "+name+" started", func() bool {
		return strings.Contains(n.Log(), "node started")
	})
	return n
}

// waitAllStarted waits until every occurrence of job-000… due in [from, to] has started.
func (f *fleet) waitAllStarted(jobs int, from, to time.Time, timeout time.Duration) {
	f.t.Helper()
	var missing []string
	defer func() {
		if f.t.Failed() && len(missing) > 0 {
			f.t.Logf("%d occurrences never started, first %v", len(missing), missing[:min(len(missing), 20)])
			// What the fleet recorded of the first says why (skipped, missed, failed).
			job, _ := dueOf(f.t, missing[0])
			for _, r := range f.history("e2e", job) {
				if r.Occurrence == missing[0] {
					f.t.Logf("history of %s: %s attempt %d on %s: %s", r.Occurrence, r.Status, r.Attempt, r.Node, r.Error)
				}
			}
		}
	}()
	testwait.For(f.t, timeout, fmt.Sprintf("every occurrence from %s to %s to start", from.Format(time.TimeOnly), to.Format(time.TimeOnly)), func() bool {
		byOcc := starts(f.events())
		missing = missing[:0]
		for i := range jobs {
			for s := from; !s.After(to); s = s.Add(time.Second) {
				if occ := cron.OccurrenceID(fmt.Sprintf("job-%03d", i), s); len(byOcc[occ]) == 0 {
					missing = append(missing, occ)
				}
			}
		}
		return len(missing) == 0
	})
}

func (f *fleet) events() []fleettest.Event {
	f.t.Helper()
	ev, err := fleettest.ReadRuns(f.runs)
	if err != nil {
		f.t.Fatal(err)
	}
	return ev
}

func (f *fleet) history(ns, job string) []queue.Record {
	f.t.Helper()
	q, ok := f.queue[ns]
	if !ok {
		q = queue.New(f.rdb, queue.Config{Namespace: ns, Lease: 5 * time.Second})
		f.queue[ns] = q
	}
	recs, err := q.History(f.t.Context(), job, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	return recs
}

func tailOf(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func recordJobs(n int, schedule string, sleep time.Duration, extra string) func(string) string {
	return recordJobsLease(n, schedule, sleep, extra, 2*time.Second)
}

func recordJobsLease(n int, schedule string, sleep time.Duration, extra string, lease time.Duration) func(string) string {
	return recordJobFile(n, schedule, sleep, lease, "", extra)
}

// recordJobFile is a job file of n jobs named job-000…, each on schedule, whose handler
// records its start and end in the runs file and runs for sleep, under a runner block with
// lease and the extra settings runnerExtra, each job with the extra settings jobExtra.
func recordJobFile(n int, schedule string, sleep, lease time.Duration, runnerExtra, jobExtra string) func(string) string {
	return func(runs string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "runner {\n  namespace = \"e2e\"\n  lease = %q\n%s\n}\n", lease, runnerExtra)
		cmd := fleettest.RecordCommand(runs, sleep)
		for i := range n {
			fmt.Fprintf(&b, "job \"job-%03d\" {\n  schedule = %q\n%s\n  handler \"exec\" {\n    command = [%q, %q, %q]\n    env = { RUNS = %q }\n  }\n}\n",
				i, schedule, jobExtra, cmd[0], cmd[1], cmd[2], runs)
		}
		return b.String()
	}
}

// starts groups the start events by occurrence id.
func starts(ev []fleettest.Event) map[string][]fleettest.Event {
	m := map[string][]fleettest.Event{}
	for _, e := range ev {
		if e.Kind == "start" {
			m[e.Occurrence] = append(m[e.Occurrence], e)
		}
	}
	return m
}

func dueOf(t *testing.T, occ string) (string, time.Time) {
	t.Helper()
	job, due, err := cron.ParseOccurrenceID(occ)
	if err != nil {
		t.Fatal(err)
	}
	return job, due
}

// checkHealthyRuns asserts invariants 1, 2 and 4 on the events of a fleet: every occurrence
// of every job due in [from, to] started exactly once, never before its due time, and each
// job's fencing tokens are unique (and, when inOrder, strictly increase with the due times:
// claims happened in schedule order, as they do while nothing is re-run late).
func checkHealthyRuns(t *testing.T, ev []fleettest.Event, jobs int, from, to time.Time, inOrder bool) {
	t.Helper()
	byOcc := starts(ev)
	for occ, ss := range byOcc {
		if len(ss) != 1 {
			t.Errorf("occurrence %s started %d times: %+v", occ, len(ss), ss)
		}
		_, due := dueOf(t, occ)
		for _, s := range ss {
			if s.At.Before(due) {
				t.Errorf("occurrence %s started at %s, before its due time %s", occ, s.At.Format(time.StampMilli), due.Format(time.StampMilli))
			}
		}
	}
	byJob := map[string][]fleettest.Event{}
	for _, e := range ev {
		if e.Kind == "start" {
			job, _ := dueOf(t, e.Occurrence)
			byJob[job] = append(byJob[job], e)
		}
	}
	for job, ss := range byJob {
		seen := map[int64]string{}
		for _, e := range ss {
			if prev, dup := seen[e.Token]; dup {
				t.Errorf("job %s: fencing token %d handed out twice: %s and %s", job, e.Token, prev, e.Occurrence)
			}
			seen[e.Token] = e.Occurrence
		}
	}
	for i := range jobs {
		job := fmt.Sprintf("job-%03d", i)
		var prev int64
		for s := from.Truncate(time.Second); !s.After(to); s = s.Add(time.Second) {
			occ := cron.OccurrenceID(job, s)
			ss := byOcc[occ]
			if len(ss) == 0 {
				t.Errorf("occurrence %s never started", occ)
				continue
			}
			if inOrder && ss[0].Token <= prev {
				t.Errorf("job %s: fencing token %d of %s does not increase on %d", job, ss[0].Token, occ, prev)
			}
			prev = ss[0].Token
		}
	}
}

func TestFleetRunsEveryOccurrenceExactlyOnce(t *testing.T) {
	t.Parallel()
	const jobs = 50
	f := newFleet(t, recordJobs(jobs, "* * * * * *", 0, ""))
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}
	from := time.Now().Add(time.Second).Truncate(time.Second)
	to := from.Add(15 * time.Second)
	f.waitAllStarted(jobs, from, to, 40*time.Second)
	ev := f.events()
	checkHealthyRuns(t, ev, jobs, from, to, true)

	nodes := map[string]int{}
	for _, e := range ev {
		if e.Kind == "start" {
			nodes[e.Node]++
		}
	}
	t.Logf("starts per node: %v", nodes)

	// Exactly one completion recorded per occurrence.
	testwait.For(t, 10*time.Second, "the window's last completions", func() bool {
		for _, r := range f.history("e2e", fmt.Sprintf("job-%03d", jobs-1)) {
			if r.ScheduledAt.Equal(to) {
				return true
			}
		}
		return false
	})
	for i := range jobs {
		job := fmt.Sprintf("job-%03d", i)
		done := map[string]int{}
		for _, r := range f.history("e2e", job) {
			if r.Status == queue.StatusSucceeded {
				done[r.Occurrence]++
			}
		}
		for s := from; !s.After(to.Add(-time.Second)); s = s.Add(time.Second) {
			if occ := cron.OccurrenceID(job, s); done[occ] != 1 {
				t.Errorf("occurrence %s has %d succeeded records, want 1", occ, done[occ])
			}
		}
	}
}

func TestFleetRerunsOccurrencesOfKilledNode(t *testing.T) {
	t.Parallel()
	const jobs = 10
	f := newFleet(t, recordJobs(jobs, "*/2 * * * * *", 1500*time.Millisecond, "  retry {\n    attempts = 3\n  }"))
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}
	// Wait until node a is in the middle of runs, then kill it.
	victim := f.nodes["a"]
	var held []string
	testwait.For(t, 30*time.Second, "node a to hold running occurrences", func() bool {
		held = held[:0]
		ended := map[string]bool{}
		ev := f.events()
		for _, e := range ev {
			if e.Kind == "end" && e.Node == "a" {
				ended[e.Occurrence] = true
			}
		}
		for _, e := range ev {
			if e.Kind == "start" && e.Node == "a" && !ended[e.Occurrence] {
				held = append(held, e.Occurrence)
			}
		}
		return len(held) > 0
	})
	plugins := victim.Children()
	if err := victim.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	_ = victim.Wait(10 * time.Second)

	// No plugin process, and no handler process, outlives the killed runner.
	handlerPids := map[int]bool{}
	for _, e := range f.events() {
		if e.Node == "a" {
			handlerPids[e.Pid] = true
		}
	}
	testwait.For(t, 10*time.Second, "the killed node's plugins and handlers to exit", func() bool {
		for _, p := range plugins {
			if fleettest.Alive(p) {
				return false
			}
		}
		for p := range handlerPids {
			if fleettest.Alive(p) {
				return false
			}
		}
		return true
	})

	// Every occurrence a held is run again by another node with attempt 2, and completed once.
	testwait.For(t, 30*time.Second, "the killed node's occurrences to be re-run and finished", func() bool {
		ev := f.events()
		for _, occ := range held {
			ok := false
			for _, e := range ev {
				if e.Kind == "end" && e.Occurrence == occ && e.Node != "a" {
					ok = true
				}
			}
			if !ok {
				return false
			}
		}
		return true
	})
	byOcc := starts(f.events())
	for _, occ := range held {
		var rerun *fleettest.Event
		for _, s := range byOcc[occ] {
			if s.Node != "a" {
				rerun = &s
			}
		}
		if rerun == nil || rerun.Attempt != 2 {
			t.Errorf("occurrence %s: re-run %+v, want one with attempt 2 on another node", occ, rerun)
			continue
		}
		// Soon after the 2s lease ran out, not whenever some node happens to look again.
		if lag := rerun.At.Sub(killedAt); lag > 10*time.Second {
			t.Errorf("occurrence %s re-run %s after the kill; the lease is 2s", occ, lag)
		}
		if done := f.succeeded(t, occ); len(done) != 1 {
			t.Errorf("occurrence %s has %d succeeded records, want 1", occ, len(done))
		}
	}
	// Nothing lost, nothing twice: every occurrence started by a survivor started once there.
	for occ, ss := range byOcc {
		var others int
		for _, s := range ss {
			if s.Node != "a" {
				others++
			}
		}
		if others > 1 {
			t.Errorf("occurrence %s started %d times on surviving nodes", occ, others)
		}
	}
	t.Logf("node a held %d occurrences when killed: %v", len(held), held)
}

func TestFleetFencesPausedNode(t *testing.T) {
	t.Parallel()
	f := newFleet(t, recordJobs(1, "*/20 * * * * *", 6*time.Second, "  retry {\n    attempts = 3\n  }"))
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}
	var first fleettest.Event
	testwait.For(t, 30*time.Second, "an occurrence to start", func() bool {
		for _, e := range f.events() {
			if e.Kind == "start" {
				first = e
				return true
			}
		}
		return false
	})
	victim := f.nodes[first.Node]
	if err := victim.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Another node takes the occurrence over once the paused holder's lease (2s) expires.
	var second fleettest.Event
	testwait.For(t, 15*time.Second, "another node to take the occurrence over", func() bool {
		for _, e := range f.events() {
			if e.Kind == "start" && e.Occurrence == first.Occurrence && e.Node != first.Node {
				second = e
				return true
			}
		}
		return false
	})
	// The frozen node could not cancel its handler, but its plugin did, at the lease's
	// fence: the handler's process was gone before another node started the occurrence.
	if err := syscall.Kill(first.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the frozen node's handler (pid %d) still runs after the takeover (kill -0: %v): its plugin did not fence it", first.Pid, err)
	}
	if err := victim.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if second.Attempt != first.Attempt+1 || second.Token <= first.Token {
		t.Errorf("takeover %+v after %+v: want attempt+1 and a larger fencing token", second, first)
	}
	// The resumed node cancels its handler and its late completion is refused.
	testwait.For(t, 15*time.Second, "the resumed node to cancel its run and be refused", func() bool {
		l := victim.Log()
		return strings.Contains(l, "cancelling run") && strings.Contains(l, "completion refused")
	})
	testwait.For(t, 20*time.Second, "the takeover to finish", func() bool {
		for _, e := range f.events() {
			if e.Kind == "end" && e.Occurrence == first.Occurrence && e.Node == second.Node {
				return true
			}
		}
		return false
	})
	for _, e := range f.events() {
		if e.Kind == "end" && e.Occurrence == first.Occurrence && e.Node == first.Node {
			t.Errorf("the paused node's handler ran to its end; it should have been cancelled: %+v", e)
		}
	}
	if done := f.succeeded(t, first.Occurrence); len(done) != 1 || done[0].Node != second.Node {
		t.Errorf("succeeded records of %s: %+v, want exactly one by node %s", first.Occurrence, done, second.Node)
	}
}

// succeeded returns occ's succeeded records once there is one: the handler's end event
// comes before the node records the completion.
func (f *fleet) succeeded(t *testing.T, occ string) []queue.Record {
	t.Helper()
	job, _ := dueOf(t, occ)
	var done []queue.Record
	testwait.For(t, 10*time.Second, "a succeeded record of "+occ, func() bool {
		done = done[:0]
		for _, r := range f.history("e2e", job) {
			if r.Occurrence == occ && r.Status == queue.StatusSucceeded {
				done = append(done, r)
			}
		}
		return len(done) > 0
	})
	return done
}

func TestFleetRecoversFromRedisOutage(t *testing.T) {
	t.Parallel()
	const jobs = 5
	// The outage (3s) is shorter than the lease (6s): runs that finished just before it are
	// recorded after it, and nothing runs twice. (An outage longer than the lease makes
	// those runs at-least-once: Redis cannot tell a finished run from a dead holder.)
	// catchup = "all": what fell due during the outage runs, each once.
	f := newFleet(t, recordJobsLease(jobs, "* * * * * *", 0, "  catchup = \"all\"\n  overlap = \"allow\"", 6*time.Second))
	f.start("a")
	f.start("b")
	// Runs are going for a few seconds before the outage.
	testwait.For(t, 20*time.Second, "runs to begin", func() bool { return len(f.events()) > 6*jobs })
	// A frozen Redis: connections stay up, nothing answers (the nastiest kind of outage).
	f.redis.Pause()
	pausedAt := time.Now()
	testwait.For(t, 20*time.Second, "both nodes to notice the outage", func() bool {
		return strings.Contains(f.nodes["a"].Log(), "redis unreachable") && strings.Contains(f.nodes["b"].Log(), "redis unreachable")
	})
	testwait.For(t, 20*time.Second, "the outage to last 3s", func() bool { return time.Since(pausedAt) > 3*time.Second })
	f.redis.Resume()
	resumedAt := time.Now()
	// Every occurrence due from before the outage to after it ran, once.
	from := pausedAt.Add(-2 * time.Second).Truncate(time.Second)
	to := resumedAt.Add(3 * time.Second).Truncate(time.Second)
	f.waitAllStarted(jobs, from, to, 30*time.Second)
	checkHealthyRuns(t, f.events(), jobs, from, to, false)
	for _, n := range f.nodes {
		if c := strings.Count(n.Log(), "redis unreachable"); c != 1 {
			t.Errorf("node %s logged the outage %d times, want once", n.Name, c)
		}
		if !strings.Contains(n.Log(), "redis answering again") {
			t.Errorf("node %s did not log the recovery", n.Name)
		}
	}
}

func TestRunnerRefusesEvictingRedis(t *testing.T) {
	t.Parallel()
	bin := buildRunner(t)
	srv := redistest.Start(t, "--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru")
	dir := t.TempDir()
	conf := filepath.Join(dir, "jobs.hcl")
	if err := os.WriteFile(conf, []byte(recordJobs(1, "* * * * * *", 0, "")(filepath.Join(dir, "runs"))), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := fleettest.StartNode(fleettest.NodeConfig{Bin: bin, Name: "a", Configs: []string{conf}, RedisURL: srv.URL(), LogPath: filepath.Join(dir, "a.log")})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Wait(20 * time.Second)
	if err == nil || strings.Contains(err.Error(), "still running") {
		t.Fatalf("runner on an evicting Redis: %v, want a non-zero exit", err)
	}
	if l := n.Log(); !strings.Contains(l, "maxmemory-policy") || !strings.Contains(l, "allkeys-lru") {
		t.Errorf("log does not say why it refused:\n%s", l)
	}
	if keys, _ := srv.Client(t).Keys(context.Background(), "*").Result(); len(keys) != 0 {
		t.Errorf("refusing runner wrote to Redis: %v", keys)
	}

	// The operator may override the check, at the stated risk.
	runs := filepath.Join(dir, "runs")
	forced, err := fleettest.StartNode(fleettest.NodeConfig{Bin: bin, Name: "b", Configs: []string{conf}, RedisURL: srv.URL(),
		LogPath: filepath.Join(dir, "b.log"), Args: []string{"-allow-eviction"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = forced.Stop(15 * time.Second) })
	testwait.For(t, 20*time.Second, "the overriding node to run jobs", func() bool {
		ev, _ := fleettest.ReadRuns(runs)
		return len(ev) > 0
	})
}

func TestSigtermDrainsRunningHandlers(t *testing.T) {
	t.Parallel()
	f := newFleet(t, recordJobs(1, "*/2 * * * * *", 1500*time.Millisecond, ""))
	n := f.start("a")
	testwait.For(t, 20*time.Second, "a run to start", func() bool { return len(f.events()) > 0 })
	plugins := n.Children()
	if err := n.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := n.Wait(20 * time.Second); err != nil {
		t.Fatalf("runner exit after SIGTERM: %v", err)
	}
	ev := f.events()
	byOcc := starts(ev)
	for occ := range byOcc {
		if !slices.ContainsFunc(ev, func(e fleettest.Event) bool { return e.Kind == "end" && e.Occurrence == occ }) {
			t.Errorf("run of %s did not finish within the grace period", occ)
		}
	}
	for _, p := range plugins {
		if fleettest.Alive(p) {
			t.Errorf("plugin process %d outlived the runner", p)
		}
	}
	// The lease is released: no lock of this node remains.
	keys, err := f.redis.Client(t).Keys(t.Context(), "{cf:e2e:*}:lock:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		v, _ := f.redis.Client(t).Get(t.Context(), k).Result()
		if !strings.HasPrefix(v, "done:") && !strings.HasPrefix(v, "retry:") {
			t.Errorf("lock %s still held (%q) after a clean stop", k, v)
		}
	}
}

func TestNodeWaitsForRedisAtStart(t *testing.T) {
	t.Parallel()
	const jobs = 3
	f := newFleet(t, recordJobs(jobs, "* * * * * *", 0, ""))
	f.redis.Kill()
	n := f.start("a")
	testwait.For(t, 20*time.Second, "the node to report Redis unreachable", func() bool {
		return strings.Contains(n.Log(), "redis unreachable")
	})
	// Let it retry a while (its backoff reaches 1.6s): the outage is logged once, not per attempt.
	down := time.Now()
	testwait.For(t, 20*time.Second, "a few retries", func() bool { return time.Since(down) > 3*time.Second })
	f.redis.Restart()
	up := time.Now()
	// The node notices at its next retry, which its backoff puts up to 1.6s away (the engine's
	// tests prove that bound on fake time). Its jobs are new to this Redis, so they start from
	// Redis' clock when the node expands them, all in one call: from the first occurrence
	// that ran on, every occurrence runs, once.
	var first time.Time
	testwait.For(t, 20*time.Second, "a first run after Redis is back", func() bool {
		for _, e := range f.events() {
			if _, due := dueOf(t, e.Occurrence); first.IsZero() || due.Before(first) {
				first = due
			}
		}
		return !first.IsZero()
	})
	// Noticed at the next retry, then the next whole second: well within 5s of Redis' return.
	if late := first.Sub(up); late > 5*time.Second {
		t.Errorf("the first run after Redis was back was due %v after it came back", late)
	}
	from, to := first.Add(time.Second), first.Add(2*time.Second)
	f.waitAllStarted(jobs, from, to, 20*time.Second)
	if c := strings.Count(n.Log(), "redis unreachable"); c != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", c, n.Log())
	}
	if !strings.Contains(n.Log(), "redis answering again") {
		t.Errorf("recovery not logged:\n%s", n.Log())
	}
	checkHealthyRuns(t, f.events(), jobs, from, to, true)
}

func TestThirdPartyPluginFromPluginDir(t *testing.T) {
	t.Parallel()
	plugins := t.TempDir()
	buildPlugin(t, "./cmd/plugins/exec", filepath.Join(plugins, "recorder"))
	f := newFleet(t, func(runs string) string {
		return strings.Replace(recordJobs(1, "* * * * * *", 0, "")(runs), `handler "exec"`, `handler "recorder"`, 1)
	})
	// Without the plugin directory the job file does not validate.
	if out, err := exec.Command(f.bin, "validate", f.conf).CombinedOutput(); err == nil || !strings.Contains(string(out), `Unknown plugin`) {
		t.Errorf("validate without -plugin-dir: %v\n%s", err, out)
	}
	f.start("a", "-plugin-dir", plugins)
	testwait.For(t, 20*time.Second, "runs through the third-party plugin", func() bool { return len(starts(f.events())) >= 2 })
}

// TestMisbehavingPluginsAreContained runs a plugin that panics mid-run, one that exits
// mid-run and one that hangs ignoring cancellation, next to a healthy job: each bad run fails
// with a clear error and is retried per policy, its plugin is restarted, the healthy job
// keeps running once per second, and after a SIGKILL of the runner no process is left.
func TestMisbehavingPluginsAreContained(t *testing.T) {
	t.Parallel()
	plugins := t.TempDir()
	bad := filepath.Join(plugins, "panicker")
	buildPlugin(t, "./internal/pluginhost/testdata/testplugin", bad)
	data, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"exiter", "hanger"} {
		if err := os.WriteFile(filepath.Join(plugins, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := newFleet(t, func(runs string) string {
		healthy := recordJobs(1, "* * * * * *", 0, "")(runs)
		return healthy + `
job "panics" {
  schedule = "*/2 * * * * *"
  retry {
    attempts = 2
    backoff  = "100ms"
  }
  handler "panicker" {
    mode = "panic"
  }
}
job "exits" {
  schedule = "*/2 * * * * *"
  retry {
    attempts = 2
    backoff  = "100ms"
  }
  handler "exiter" {
    mode = "exit"
  }
}
job "hangs" {
  schedule = "*/3 * * * * *"
  timeout  = "500ms"
  retry {
    attempts = 2
    backoff  = "100ms"
  }
  handler "hanger" {
    mode = "ignore"
  }
}
`
	})
	n := f.start("a", "-plugin-dir", plugins)
	from := time.Now().Add(time.Second).Truncate(time.Second)

	// Each bad job fails both of its attempts, each with a clear error. (A hanging run's
	// plugin is killed when it ignores its cancellation; a retry that landed on that process
	// meanwhile fails as a plugin failure.)
	wants := map[string][]string{"panics": {"plugin failed"}, "exits": {"plugin failed"}, "hangs": {"timed out after 500ms", "plugin failed"}}
	for job, want := range wants {
		// The attempts of the job's first occurrence. Its attempt 2 waits for the plugin's
		// restart, so the next occurrence's attempt 1 may be recorded before it.
		attempts := func() (first, second *queue.Record) {
			recs := f.history("e2e", job) // newest first
			if len(recs) == 0 {
				return nil, nil
			}
			occ := recs[len(recs)-1].Occurrence
			for i := range recs {
				if r := &recs[i]; r.Occurrence == occ && r.Attempt == 1 {
					first = r
				} else if r.Occurrence == occ && r.Attempt == 2 {
					second = r
				}
			}
			return first, second
		}
		testwait.For(t, 30*time.Second, "two attempts of "+job, func() bool {
			first, second := attempts()
			return first != nil && second != nil
		})
		first, second := attempts()
		if first.Status != queue.StatusRetrying || second.Status != queue.StatusFailed {
			t.Errorf("job %s: records %+v then %+v, want attempt 1 retrying then attempt 2 failed", job, first, second)
		}
		if !strings.Contains(first.Error, want[0]) {
			t.Errorf("job %s attempt 1: error %q does not say %q", job, first.Error, want[0])
		}
		if !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(second.Error, w) }) {
			t.Errorf("job %s attempt 2: error %q says none of %q", job, second.Error, want)
		}
	}
	// Later occurrences run on restarted plugins: they fail the same way, not with "closed".
	testwait.For(t, 30*time.Second, "the crashing plugins to serve again after a restart", func() bool {
		return len(f.history("e2e", "exits")) >= 4 && len(f.history("e2e", "panics")) >= 4
	})
	// Meanwhile the healthy job ran every second, once.
	to := time.Now().Add(-time.Second).Truncate(time.Second)
	f.waitAllStarted(1, from, to, 10*time.Second)
	checkHealthyRuns(t, f.events(), 1, from, to, true)

	// A SIGKILLed runner leaves no plugin behind.
	if err := n.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = n.Wait(10 * time.Second)
	testwait.For(t, 15*time.Second, "every plugin process to exit", func() bool {
		return len(fleettest.ProcessesIn(plugins)) == 0
	})
}

// TestPluginMaxConcurrentLimitsRunsOnANode: a plugin block's max_concurrent reaches the
// plugin host. Three jobs fall due at the same instant every second; with max_concurrent = 1
// their runs on the one node take turns (the runs file reads start, end, start, end…), and
// none is lost for waiting. Without the limit the three start together, so the test fails.
func TestPluginMaxConcurrentLimitsRunsOnANode(t *testing.T) {
	t.Parallel()
	const jobs = 3
	f := newFleet(t, func(runs string) string {
		return "plugin \"exec\" {\n  max_concurrent = 1\n}\n" + recordJobs(jobs, "* * * * * *", 100*time.Millisecond, "")(runs)
	})
	f.start("a")
	from := time.Now().Add(time.Second).Truncate(time.Second)
	to := from.Add(3 * time.Second)
	f.waitAllStarted(jobs, from, to, 20*time.Second)
	ev := f.events()
	checkHealthyRuns(t, ev, jobs, from, to, true)
	running := map[int]bool{}
	for _, e := range ev {
		switch e.Kind {
		case "start":
			if len(running) > 0 {
				t.Fatalf("%s started while another run of the plugin was in flight; events:\n%+v", e.Occurrence, ev)
			}
			running[e.Pid] = true
		case "end":
			delete(running, e.Pid)
		}
	}
}

// handlerLines reads the lines that test handlers append to file, as their fields: each
// line must have n. A last line without its newline is being written: it is left for the
// next read.
func handlerLines(t *testing.T, file string, n int) [][]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != n {
			t.Fatalf("%s: malformed line %q, want %d fields", filepath.Base(file), sc.Text(), n)
		}
		out = append(out, fs)
	}
	return out
}
