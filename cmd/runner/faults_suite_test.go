//go:build faults

package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/redistest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// The fault suite: real runner processes on real Redis deployments, faults injected from
// outside (signals, a TCP proxy between a node and Redis, Redis restarts and failovers, bad
// keys, ACLs, plugins that misbehave), and the probe plugin (testdata/probe) writing every
// run's effects to a fenced sink that no fault touches. The checker reads the sink's log and
// prints, per scenario, what was expected and what happened; each scenario asserts its pass
// figures. It is behind the build tag "faults" because it takes minutes; .ci/run runs it:
//
//	go test -tags faults -count=1 -run '^TestFaults$' -v ./cmd/runner
//
// Scenarios run one after the other, never in parallel: their timing is the point, and the
// machine is small.

// scenario is one fault and what must hold under it.
type scenario struct {
	name string
	run  func(t *testing.T, s *suite)
}

// scenarios lists the suite, in the order it runs.
func scenarios() []scenario {
	return []scenario{
		{"holder SIGKILLed every few seconds", scenarioKillLoop},
		{"runner SIGSTOPped for twice its lease", scenarioStop},
		{"negative control: SIGSTOP without self-fencing", scenarioStopUnfenced},
		{"node cut from Redis for 30s", scenarioCut},
		{"node clocks skewed by +30s and -30s", scenarioSkew},
		{"plugins that panic, exit, hang or flood", scenarioBadPlugins},
		{"redis restarted with AOF", scenarioRestartAOF},
		{"redis restarted without persistence", scenarioRestartEmpty},
		{"sentinel failover", scenarioSentinel},
		{"cluster master lost", scenarioCluster},
		{"wrong-type key in one shard", scenarioBadKey},
		{"ACL denies EVALSHA", scenarioACL},
		{"Redis OOM", scenarioOOM},
		{"a load of occurrences every second for 60s", scenarioLoad},
		{"10,000 occurrences every second for 60s on one node", scenarioFullLoadOneNode},
	}
}

func TestFaults(t *testing.T) {
	s := newSuite(t)
	for _, sc := range scenarios() {
		if !t.Run(sc.name, func(t *testing.T) { sc.run(t, s) }) {
			t.Logf("scenario %q failed", sc.name)
		}
	}
	t.Logf("fault suite figures:\n%s", s.table())
}

// suite holds what the scenarios share: the binaries and the fenced sink.
type suite struct {
	t         *testing.T
	bin       string // runner
	pluginDir string // holds the probe
	sink      *redistest.Server
	sinkRDB   *redis.Client
	results   []figures
}

func newSuite(t *testing.T) *suite {
	t.Helper()
	s := &suite{t: t, bin: buildRunner(t), pluginDir: t.TempDir()}
	buildPlugin(t, "./cmd/runner/testdata/probe", filepath.Join(s.pluginDir, "probe"))
	s.sink = redistest.Start(t)
	s.sinkRDB = s.sink.Client(t)
	return s
}

// figures is what the checker found in one scenario.
type figures struct {
	scenario string
	expected int // occurrences due in the scenario's window
	run      int // of those, with an accepted "done"
	dupes    int // occurrences whose "done" the sink accepted under two tokens
	stale    int // writes the sink refused: a holder wrote after a newer one had
	missed   int // expected occurrences never done
	early    int // runs whose first write came before their due time
	leaked   int // processes of the fleet left after it stopped
	note     string

	missedIDs []string // the missed occurrences, for the scenarios that look closer
}

func (s *suite) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-52s %8s %6s %6s %6s %6s %6s %6s  %s\n", "scenario", "expected", "run", "dupes", "stale", "missed", "early", "leaked", "note")
	for _, f := range s.results {
		fmt.Fprintf(&b, "%-52s %8d %6d %6d %6d %6d %6d %6d  %s\n", f.scenario, f.expected, f.run, f.dupes, f.stale, f.missed, f.early, f.leaked, f.note)
	}
	return b.String()
}

// sinkWrite is one line of the sink's log.
type sinkWrite struct {
	accepted   bool
	occurrence string
	token      int64
	node       string
	kind       string // "beat" or "done"
	at         time.Time
}

// writes reads the sink's log.
func (s *suite) writes(t *testing.T) []sinkWrite {
	t.Helper()
	lines, err := s.sinkRDB.LRange(context.WithoutCancel(t.Context()), "sink:log", 0, -1).Result()
	if err != nil {
		t.Fatalf("read the sink: %v", err)
	}
	out := make([]sinkWrite, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 6 {
			t.Fatalf("sink log line %q", l)
		}
		tok, err1 := strconv.ParseInt(f[2], 10, 64)
		us, err2 := strconv.ParseInt(f[5], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("sink log line %q", l)
		}
		out = append(out, sinkWrite{accepted: f[0] == "A", occurrence: f[1], token: tok, node: f[3], kind: f[4], at: time.UnixMicro(us)})
	}
	return out
}

// faultFleet is one scenario's fleet: runner nodes on one job file, reaching Redis at
// per-node URLs (through a proxy, or not).
type faultFleet struct {
	t     *testing.T
	s     *suite
	dir   string
	conf  string
	nodes map[string]*fleettest.Node
	// rdb reads the fleet's Redis (its history), for the figures' explanations.
	rdb redis.UniversalClient
}

// fleetOf writes the job file jobs (HCL, the runner block included) and returns a fleet
// on it; the sink is emptied first.
func (s *suite) fleetOf(t *testing.T, jobs string) *faultFleet {
	t.Helper()
	if err := s.sinkRDB.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	f := &faultFleet{t: t, s: s, dir: t.TempDir(), nodes: map[string]*fleettest.Node{}}
	f.conf = filepath.Join(f.dir, "jobs.hcl")
	if err := os.WriteFile(f.conf, []byte(jobs), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// probeJobs is a job file of n jobs named job-000… on schedule, each run a probe run of
// runFor, beating every 100ms, in a namespace of its own, with the lease given.
func (s *suite) probeJobs(n int, schedule string, runFor, lease time.Duration, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "runner {\n  namespace = \"faults\"\n  lease = %q\n}\n", lease)
	for i := range n {
		fmt.Fprintf(&b, "job \"job-%03d\" {\n  schedule = %q\n%s\n  handler \"probe\" {\n    sink = %q\n    run_ms = %d\n  }\n}\n",
			i, schedule, extra, s.sink.URL(), runFor.Milliseconds())
	}
	return b.String()
}

// start starts node name on url, with env added to its environment.
func (f *faultFleet) start(name, url string, env ...string) *fleettest.Node {
	f.t.Helper()
	n, err := fleettest.StartNode(fleettest.NodeConfig{
		Bin: f.s.bin, Name: name, Configs: []string{f.conf}, RedisURL: url,
		LogPath: filepath.Join(f.dir, name+".log"), Args: []string{"-plugin-dir", f.s.pluginDir}, Env: env,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	if old := f.nodes[name]; old == nil {
		f.t.Cleanup(func() { f.stop(name) })
	}
	f.nodes[name] = n
	testwait.For(f.t, 20*time.Second, "node "+name+" started", func() bool {
		return strings.Contains(n.Log(), "node started")
	})
	return n
}

// stop stops node name and, if the test failed, shows its log.
func (f *faultFleet) stop(name string) {
	n := f.nodes[name]
	if err := n.Stop(15 * time.Second); err != nil {
		f.t.Logf("node %s: %v", name, err)
	}
	if f.t.Failed() {
		f.t.Logf("log of node %s:\n%s", name, tailOf(n.Log(), 40))
	}
}

// stopAll stops every node and counts the fleet's processes left behind: plugins or the
// commands they started.
func (f *faultFleet) stopAll() (leaked int) {
	for name := range f.nodes {
		f.stop(name)
	}
	var left []int
	testwait.For(f.t, 20*time.Second, "the fleet's plugins to exit", func() bool {
		left = fleettest.ProcessesIn(f.s.pluginDir)
		return len(left) == 0
	})
	return len(left)
}

// explain logs what the sink and the history know of occ, which was missed.
func (f *faultFleet) explain(occ string, ws []sinkWrite) {
	f.t.Helper()
	for _, w := range ws {
		if w.occurrence == occ {
			f.t.Logf("missed %s: sink %+v", occ, w)
		}
	}
	job, _, _ := cron.ParseOccurrenceID(occ)
	for _, r := range f.history(job) {
		if r.Occurrence == occ {
			f.t.Logf("missed %s: history %s attempt %d on %s: %s", occ, r.Status, r.Attempt, r.Node, r.Error)
		}
	}
}

// history reads job's history from the fleet's Redis, or nothing when it cannot (Redis is
// down, or the scenario has no client): the callers wait, or explain, with what there is.
func (f *faultFleet) history(job string) []queue.Record {
	if f.rdb == nil {
		return nil
	}
	recs, err := queue.New(f.rdb, queue.Config{Namespace: "faults"}).History(context.WithoutCancel(f.t.Context()), job, 1000)
	if err != nil {
		f.t.Logf("history of %s: %v", job, err)
	}
	return recs
}

// check computes a scenario's figures over the occurrences of n jobs due in [from, to]
// every step (see checkJobs).
func (f *faultFleet) check(n int, from, to time.Time, step time.Duration, faults []time.Time) figures {
	f.t.Helper()
	return f.checkJobs(jobNames(n), from, to, step, faults)
}

// jobNames names the first n jobs of probeJobs.
func jobNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("job-%03d", i)
	}
	return names
}

// checkJobs computes a scenario's figures over the occurrences of jobs due in [from, to]
// every step: a scenario whose fault leaves some jobs out on purpose names the others.
// Every write counts for stale and early, whatever its job. faults lists the instants the
// scenario killed a node or cut it from Redis: a "done" accepted twice is excused only when
// such a fault came while the first run held its occurrence, before the record of its end
// reached Redis, where no scheduler can tell a run that ended from one that did not
// (handlers key their effects by the occurrence id for this; docs/reliability.md).
func (f *faultFleet) checkJobs(jobs []string, from, to time.Time, step time.Duration, faults []time.Time) figures {
	f.t.Helper()
	ws := f.s.writes(f.t)
	fg := figures{}
	doneBy := map[string][]sinkWrite{}
	first := map[string]sinkWrite{}
	began := map[runKey]time.Time{}
	for _, w := range ws {
		if !w.accepted {
			fg.stale++
			continue
		}
		if w.kind == "done" {
			doneBy[w.occurrence] = append(doneBy[w.occurrence], w)
		}
		if _, ok := first[w.occurrence]; !ok {
			first[w.occurrence] = w
		}
		if k := (runKey{w.occurrence, w.token}); began[k].IsZero() {
			began[k] = w.at
		}
	}
	for occ, w := range first {
		if _, due, err := cron.ParseOccurrenceID(occ); err == nil && w.at.Before(due) {
			fg.early++
			f.t.Errorf("%s: first write at %s, before its due time", occ, w.at.Format(time.RFC3339Nano))
		}
	}
	for _, job := range jobs {
		for at := from; !at.After(to); at = at.Add(step) {
			occ := cron.OccurrenceID(job, at)
			fg.expected++
			ds := doneBy[occ]
			if len(ds) == 0 {
				fg.missed++
				fg.missedIDs = append(fg.missedIDs, occ)
				f.explain(occ, ws)
				continue
			}
			fg.run++
			if len(ds) > 1 && !excused(began[runKey{occ, ds[0].token}], ds[0].at, faults) {
				fg.dupes++
				f.t.Errorf("%s: done accepted %d times: %+v", occ, len(ds), ds)
			}
		}
	}
	return fg
}

// runKey names one run of an occurrence: the one under one claim's token.
type runKey struct {
	occurrence string
	token      int64
}

// excused says whether a done accepted several times is explained by a fault while the run
// of the first done, which began (first wrote) at began and wrote its done at done, held
// its occurrence: from its claim, made at most the claim lead (a quarter second) before its
// start, taken here as a second before it, to a second after its done, while the record of
// its end is on its way to Redis. A node cut off from Redis then cannot record a run that
// ends during the cut (it ends before its fence), and a killed one cannot record a run that
// ended: once the lease is out, another node runs the occurrence again.
func excused(began, done time.Time, faults []time.Time) bool {
	return slices.ContainsFunc(faults, func(k time.Time) bool {
		return !k.Before(began.Add(-time.Second)) && k.Sub(done) < time.Second
	})
}

// report records fg as scenario's figures and checks the pass figures every scenario shares:
// no duplicate, no stale write, nothing early, no leaked process. Missed is left to each
// scenario, which knows whether its fault allows misses.
func (s *suite) report(t *testing.T, fg figures) {
	t.Helper()
	fg.scenario = t.Name()[strings.IndexByte(t.Name(), '/')+1:]
	s.results = append(s.results, fg)
	t.Logf("expected %d, run %d, accepted duplicates %d, stale writes %d, missed %d, early %d, leaked processes %d %s",
		fg.expected, fg.run, fg.dupes, fg.stale, fg.missed, fg.early, fg.leaked, fg.note)
	if fg.dupes != 0 || fg.early != 0 || fg.leaked != 0 {
		t.Errorf("duplicates %d, early %d, leaked %d: want 0 each", fg.dupes, fg.early, fg.leaked)
	}
}

// nextSecond returns the first whole second after t plus d.
func nextSecond(t time.Time, d time.Duration) time.Time {
	return t.Add(d).Truncate(time.Second).Add(time.Second)
}
