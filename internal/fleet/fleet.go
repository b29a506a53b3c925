package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// Store is what the fleet needs of the agenda's Redis; *queue.Queue implements it.
type Store interface {
	Nodes(ctx context.Context) ([]queue.NodeSeen, error)
	Pauses(ctx context.Context, jobs []string) (map[string]queue.Pause, error)
	LastRuns(ctx context.Context, jobs []string, pass func(queue.Record) bool) (map[string]queue.Record, error)
	History(ctx context.Context, job string, n int) ([]queue.Record, error)
	Pause(ctx context.Context, job string, p queue.Pause) error
	Resume(ctx context.Context, job string) (bool, error)
	Trigger(ctx context.Context, job string, ids ...string) (int, error)
	Audit(ctx context.Context, e queue.AuditEntry) error
	AuditLog(ctx context.Context, n int) ([]queue.AuditEntry, error)
	Stats(ctx context.Context, prios map[string]int) (queue.Stats, error)
}

// Config says where a Fleet's job set and clock come from.
type Config struct {
	// Jobs returns the job set in force (a node's, which a reload replaces), or nil when
	// the caller knows none (a command given only -namespace): then the fleet's nodes,
	// histories and pauses are still read, and actions name jobs unchecked.
	Jobs func() *config.Config
	// Now is the clock that dates next fires and actions (default time.Now).
	Now func() time.Time
	// Logger receives what cannot be returned: an action whose audit record failed. Nil
	// discards it.
	Logger *slog.Logger
}

// Fleet reads and steers one namespace's fleet.
type Fleet struct {
	store Store
	cfg   Config
	log   *slog.Logger
}

// New returns a Fleet over store.
func New(store Store, cfg Config) *Fleet {
	if cfg.Jobs == nil {
		cfg.Jobs = func() *config.Config { return nil }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fleet{store: store, cfg: cfg, log: log}
}

// InputError is an error in what the caller asked: an unknown job, a bad time or range.
type InputError struct {
	// NotFound says the error names something that does not exist (HTTP 404, not 400).
	NotFound bool
	msg      string
}

func (e *InputError) Error() string { return e.msg }

func inputErr(format string, args ...any) error {
	return &InputError{msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &InputError{NotFound: true, msg: fmt.Sprintf(format, args...)}
}

// IsInput reports whether err is the caller's mistake (an *InputError) rather than Redis'.
func IsInput(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// Status is the fleet at a glance: what `runner status -json` prints and GET /v1/nodes and
// /v1/jobs serve.
type Status struct {
	// Nodes are the nodes that announced themselves, by name.
	Nodes []Node `json:"nodes"`
	// Drift is true when the live nodes run different job sets (their job_set_hash differ).
	Drift bool `json:"drift"`
	// Jobs are the jobs of the job set, by name; absent when the job set is not known.
	Jobs []Job `json:"jobs,omitempty"`
	// Backlog counts the due occurrences that no node holds by their job's priority, for
	// the priorities that have any; absent when there are none or the job set is not known.
	Backlog map[int]int64 `json:"backlog_by_priority,omitempty"`
	// Unplaced are the jobs whose due occurrences wait for a live node their constraints
	// allow, by name; absent when none waits.
	Unplaced []Unplaced `json:"unplaced,omitempty"`
}

// Unplaced is a job whose due occurrences no live node may run: they wait, and run when
// such a node appears, within the job's catch-up window (then they are missed).
type Unplaced struct {
	Job string `json:"job"`
	// Waiting counts its occurrences that wait.
	Waiting int64 `json:"waiting"`
	// Constraints are the job's constraints as a person reads them; absent when the job set
	// is not known.
	Constraints string `json:"constraints,omitempty"`
}

// Node is one node of the fleet.
type Node struct {
	queue.NodeSeen
	// Alive is whether Redis heard from the node within queue.NodeTTL.
	Alive bool `json:"alive"`
	// Drifted marks a live node whose job set is not the one most live nodes run, so an
	// operator told of drift sees which node to redeploy; when no job set has a majority
	// of the live nodes, every live node is marked, since none is the reference.
	Drifted bool `json:"drifted,omitempty"`
}

// Job is one job as the fleet sees it.
type Job struct {
	Name     string `json:"name"`
	Schedule string `json:"schedule"`
	Timezone string `json:"timezone"`
	// Next is the job's next fire after now (with its jitter), by the reader's clock, that
	// no calendar excludes; absent if none.
	Next *time.Time `json:"next,omitempty"`
	// Last is the job's latest run record, not counting its alerts' runs, which would
	// otherwise mark a failing job ok once its failure alert succeeded; absent if none.
	Last *queue.Record `json:"last,omitempty"`
	// Paused is the job's fleet-wide pause; absent if not paused.
	Paused *queue.Pause `json:"paused,omitempty"`
	// Health sums the job up: HealthPaused, HealthFailing, HealthUnplaced, HealthRetrying,
	// HealthOK or HealthNew.
	Health Health `json:"health"`
}

// Health is a job's mark in a list: what an operator should look at first.
type Health string

// The marks, worst first.
const (
	// HealthFailing: its latest run failed for good, was abandoned or was missed.
	HealthFailing Health = "failing"
	// HealthUnplaced: its latest occurrence waits for a live node that its constraints
	// allow.
	HealthUnplaced Health = "unplaced"
	// HealthRetrying: its latest run failed and runs again.
	HealthRetrying Health = "retrying"
	// HealthPaused: paused fleet-wide.
	HealthPaused Health = "paused"
	// HealthOK: its latest run succeeded, or was skipped or cancelled by policy.
	HealthOK Health = "ok"
	// HealthNew: nothing recorded yet.
	HealthNew Health = "new"
)

// alertRun reports whether r is the run of an alert rather than of its job.
func alertRun(r queue.Record) bool { return cron.IsAlert(r.Occurrence) }

func health(last *queue.Record, paused bool) Health {
	switch {
	case paused:
		return HealthPaused
	case last == nil:
		return HealthNew
	}
	switch last.Status {
	case queue.StatusFailed, queue.StatusAbandoned, queue.StatusMissed:
		return HealthFailing
	case queue.StatusUnplaced:
		return HealthUnplaced
	case queue.StatusRetrying:
		return HealthRetrying
	}
	return HealthOK
}

// Nodes returns the fleet's nodes, by name, and whether the live ones disagree on the job set.
func (f *Fleet) Nodes(ctx context.Context) ([]Node, bool, error) {
	seen, err := f.store.Nodes(ctx)
	if err != nil {
		return nil, false, err
	}
	nodes := []Node{}
	hashes := map[string]int{}
	live := 0
	for _, n := range seen {
		alive := n.Age <= queue.NodeTTL
		nodes = append(nodes, Node{NodeSeen: n, Alive: alive})
		if alive {
			hashes[n.JobSetHash]++
			live++
		}
	}
	drift := len(hashes) > 1
	if drift {
		for i := range nodes {
			nodes[i].Drifted = nodes[i].Alive && 2*hashes[nodes[i].JobSetHash] <= live
		}
	}
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return nodes, drift, nil
}

// Status returns the fleet's nodes and every job of the job set with its next fire, last
// result and pause, in a few round trips whatever the number of jobs.
func (f *Fleet) Status(ctx context.Context) (*Status, error) {
	nodes, drift, err := f.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	st := &Status{Nodes: nodes, Drift: drift}
	cfg := f.cfg.Jobs()
	var prios map[string]int
	if cfg != nil {
		if st.Jobs, err = f.jobs(ctx, cfg.Jobs); err != nil {
			return nil, err
		}
		prios = config.Priorities(cfg.Jobs)
	}
	qs, err := f.store.Stats(ctx, prios)
	if err != nil {
		return nil, fmt.Errorf("fleet: status: %w", err)
	}
	for job, n := range qs.Unplaced {
		u := Unplaced{Job: job, Waiting: n}
		if cfg != nil {
			if j := cfg.Job(job); j != nil {
				u.Constraints = j.Placement()
			}
		}
		st.Unplaced = append(st.Unplaced, u)
	}
	slices.SortFunc(st.Unplaced, func(a, b Unplaced) int { return strings.Compare(a.Job, b.Job) })
	for p, n := range qs.DueByPriority {
		if n > 0 {
			if st.Backlog == nil {
				st.Backlog = map[int]int64{}
			}
			st.Backlog[p] = n
		}
	}
	return st, nil
}

// JobQuery selects a page of the job list: a job set may hold a hundred thousand jobs,
// and a page's reads cost Redis a few commands per job shown.
type JobQuery struct {
	// Match keeps the jobs whose name contains it, ignoring case; empty keeps all.
	Match string
	// Offset skips that many of the matching jobs, in name order.
	Offset int
	// Limit is how many jobs the page holds at most (default DefaultPage, at most MaxPage).
	Limit int
}

// Page sizes of the job list.
const (
	DefaultPage = 500
	MaxPage     = 5000
)

// JobPage is one page of the job list: GET /v1/jobs.
type JobPage struct {
	Jobs []Job `json:"jobs"`
	// Total is how many jobs match, on every page.
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

// Jobs returns the page of the job set that q selects, by name, as Status shows jobs.
func (f *Fleet) Jobs(ctx context.Context, q JobQuery) (*JobPage, error) {
	cfg := f.cfg.Jobs()
	if cfg == nil {
		return nil, inputErr("the job set is not known: give the job files")
	}
	if q.Limit == 0 {
		q.Limit = DefaultPage
	}
	switch {
	case q.Limit < 1 || q.Limit > MaxPage:
		return nil, inputErr("limit = %d: want 1 to %d jobs", q.Limit, MaxPage)
	case q.Offset < 0:
		return nil, inputErr("offset = %d: want 0 or more", q.Offset)
	}
	match := strings.ToLower(q.Match)
	var all []*config.Job
	for _, j := range cfg.Jobs {
		if match == "" || strings.Contains(strings.ToLower(j.Name), match) {
			all = append(all, j)
		}
	}
	slices.SortFunc(all, func(a, b *config.Job) int { return strings.Compare(a.Name, b.Name) })
	page := &JobPage{Total: len(all), Offset: q.Offset, Limit: q.Limit, Jobs: []Job{}}
	if q.Offset >= len(all) {
		return page, nil
	}
	js, err := f.jobs(ctx, all[q.Offset:min(len(all), q.Offset+q.Limit)])
	if err != nil {
		return nil, err
	}
	page.Jobs = js
	return page, nil
}

func (f *Fleet) jobs(ctx context.Context, jobs []*config.Job) ([]Job, error) {
	names := make([]string, len(jobs))
	for i, j := range jobs {
		names[i] = j.Name
	}
	pauses, err := f.store.Pauses(ctx, names)
	if err != nil {
		return nil, err
	}
	last, err := f.store.LastRuns(ctx, names, alertRun)
	if err != nil {
		return nil, err
	}
	now := f.cfg.Now()
	out := make([]Job, 0, len(jobs))
	for _, j := range jobs {
		js := Job{Name: j.Name, Schedule: j.Schedule, Timezone: ZoneName(j)}
		if next, ok := NextRun(j, now); ok {
			js.Next = &next.At
		}
		if r, ok := last[j.Name]; ok {
			js.Last = &r
		}
		if p, ok := pauses[j.Name]; ok {
			js.Paused = &p
		}
		js.Health = health(js.Last, js.Paused != nil)
		out = append(out, js)
	}
	slices.SortFunc(out, func(a, b Job) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// JobDetail is one job with its next fires: GET /v1/jobs/{name}.
type JobDetail struct {
	Job
	// Fires are its next fire times, as `runner next` lists them.
	Fires []Fire `json:"fires"`
	// Definition is the job's settings that an operator reads on its page.
	Definition Definition `json:"definition"`
}

// Definition is what a job's page shows of its settings.
type Definition struct {
	Schedules []string `json:"schedules"`
	Handler   string   `json:"handler"`
	Timeout   string   `json:"timeout,omitempty"`
	Jitter    string   `json:"jitter,omitempty"`
	Attempts  int      `json:"attempts"`
	Overlap   string   `json:"overlap,omitempty"`
	CatchUp   string   `json:"catchup,omitempty"`
	// Alert says which events run which alert handler, e.g. "failure, late after 2m: http";
	// empty when the job has no alert block.
	Alert string `json:"alert,omitempty"`
	// Exclude names the calendars whose days the job does not run on.
	Exclude []string `json:"exclude,omitempty"`
	// Constraints are the job's constraints as a person reads them, joined by "and": only
	// nodes whose labels satisfy them run it; absent for any node.
	Constraints string `json:"constraints,omitempty"`
	// After says which jobs' runs run it, and on which outcome: "extract on success".
	After []string `json:"after,omitempty"`
	// Parts says how an occurrence runs when not whole: "broadcast" (once on every live
	// node) or "N shards".
	Parts  string `json:"parts,omitempty"`
	Source string `json:"source,omitempty"`
}

// Job returns the job name of the job set with its next n fires.
func (f *Fleet) Job(ctx context.Context, name string, n int) (*JobDetail, error) {
	j, err := f.job(name)
	if err != nil {
		return nil, err
	}
	if n < 1 || n > maxFires {
		return nil, inputErr("n = %d: want 1 to %d fire times", n, maxFires)
	}
	js, err := f.jobs(ctx, []*config.Job{j})
	if err != nil {
		return nil, err
	}
	d := &JobDetail{Job: js[0], Fires: NextFires(j, f.cfg.Now(), n), Definition: definition(j)}
	return d, nil
}

// maxFires bounds the fire times one call lists.
const maxFires = 1000

// job returns the job of the job set named name.
func (f *Fleet) job(name string) (*config.Job, error) {
	cfg := f.cfg.Jobs()
	if cfg == nil {
		return nil, inputErr("the job set is not known: give the job files")
	}
	j := cfg.Job(name)
	if j == nil {
		return nil, notFound("no job %q in the job files", name)
	}
	return j, nil
}

// checkJob refuses a job the job set does not have, when the job set is known.
func (f *Fleet) checkJob(name string) error {
	if name == "" {
		return inputErr("no job named")
	}
	if cfg := f.cfg.Jobs(); cfg != nil && cfg.Job(name) == nil {
		return notFound("no job %q in the job files", name)
	}
	return nil
}

// ZoneName is the job's time zone as shown: its timezone setting, or UTC.
func ZoneName(j *config.Job) string {
	if j.Timezone == "" {
		return "UTC"
	}
	return j.Timezone
}

func definition(j *config.Job) Definition {
	d := Definition{Schedules: j.Schedules, Handler: j.Handler.Plugin, Attempts: j.Retry.Attempts}
	if j.Timeout > 0 {
		d.Timeout = j.Timeout.String()
	}
	if j.Jitter > 0 {
		d.Jitter = j.Jitter.String()
	}
	p := j.Policy
	def := queue.DefaultPolicy()
	if p.Overlap == "" {
		p.Overlap = def.Overlap
	}
	if p.Catchup == "" {
		p.Catchup = def.Catchup
	}
	if p.CatchupWindow <= 0 {
		p.CatchupWindow = def.CatchupWindow
	}
	d.Overlap = string(p.Overlap)
	d.CatchUp = fmt.Sprintf("%s within %s", p.Catchup, p.CatchupWindow)
	if a := j.Alert; a != nil {
		var on []string
		for _, k := range a.On {
			if k == cron.AlertLate {
				on = append(on, fmt.Sprintf("late after %s", a.LateAfter))
			} else {
				on = append(on, string(k))
			}
		}
		d.Alert = strings.Join(on, ", ") + ": " + a.Handler.Plugin
	}
	for _, c := range j.Exclude {
		d.Exclude = append(d.Exclude, c.Name())
	}
	d.Constraints = j.Placement()
	switch {
	case j.Broadcast:
		d.Parts = "broadcast"
	case j.Shards > 0:
		d.Parts = fmt.Sprintf("%d shards", j.Shards)
	}
	for _, a := range j.After {
		d.After = append(d.After, a.Job+" on "+string(a.On))
	}
	if j.DeclRange.Filename != "" {
		d.Source = fmt.Sprintf("%s:%d", j.DeclRange.Filename, j.DeclRange.Start.Line)
	}
	return d
}
