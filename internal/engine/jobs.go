package engine

import (
	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// jobSet is the job set the engine runs. It is never changed, only replaced whole (Reload),
// so the loops that read it never see half of a reload.
type jobSet struct {
	list   []*config.Job
	byName map[string]*config.Job
	shards []int                    // the agenda shards that hold the jobs
	hash   string                   // config.SetHash of list
	after  map[string][]*config.Job // job → the jobs that run after it
	limits map[string]int           // max_concurrent of the capped jobs, for the claim script
	prios  map[string]int           // priority of the jobs without the default, likewise
	// ineligible are the jobs this node may not run, its labels failing their constraints,
	// by shard (queue.Placement.Ineligible); constrained are the jobs with constraints.
	ineligible  map[int][]string
	constrained []*config.Job
}

// newJobSet indexes jobs for a node with labels.
func newJobSet(jobs []*config.Job, labels map[string]string) *jobSet {
	s := &jobSet{list: jobs, byName: make(map[string]*config.Job, len(jobs)), hash: config.SetHash(jobs), after: downstream(jobs)}
	seen := map[int]bool{}
	for _, j := range jobs {
		s.byName[j.Name] = j
		if j.MaxConcurrent > 0 {
			if s.limits == nil {
				s.limits = map[string]int{}
			}
			s.limits[j.Name] = j.MaxConcurrent
		}
		if j.Priority != queue.DefaultPriority {
			if s.prios == nil {
				s.prios = map[string]int{}
			}
			s.prios[j.Name] = j.Priority
		}
		if len(j.Constraints) > 0 {
			s.constrained = append(s.constrained, j)
			if !j.Allows(labels) {
				if s.ineligible == nil {
					s.ineligible = map[int][]string{}
				}
				sh := queue.ShardOf(j.Name)
				s.ineligible[sh] = append(s.ineligible[sh], j.Name)
			}
		}
		if sh := queue.ShardOf(j.Name); !seen[sh] {
			seen[sh] = true
			s.shards = append(s.shards, sh)
		}
	}
	return s
}

// Reload makes jobs the engine's job set, from the next expansion and claim on: new jobs
// are expanded, removed ones no longer (their occurrences already added are handed back for
// other nodes, then skipped), and changed ones are planned again. It is safe to call while
// Run runs.
func (e *Engine) Reload(jobs []*config.Job) {
	next := newJobSet(jobs, e.cfg.Labels)
	prev := e.jobs.Swap(next)
	var added, removed, changed int
	for name, j := range next.byName {
		switch old, ok := prev.byName[name]; {
		case !ok:
			added++
		case old.Hash != j.Hash:
			changed++
		}
	}
	for name := range prev.byName {
		if _, ok := next.byName[name]; !ok {
			removed++
		}
	}
	e.log.Info("job set reloaded", "jobs", len(jobs), "added", added, "removed", removed, "changed", changed, "job_set_hash", next.hash)
	e.notify() // new shards may hold due occurrences
}
