package engine

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// definitions is the expander's view of which job definitions are in force in the fleet.
// Of two definitions of a job, the one loaded last is (internal/queue's expand.lua decides
// it): while another node's is, this node does not plan the job, and its claims leave the
// job's occurrences to the nodes that have that definition (Engine.yield), so the fleet runs
// one schedule per job. If that node goes away, this node loads its own definition again,
// which makes it the newest.
type definitions struct {
	loaded map[string]time.Time // job → when this node loaded its definition (Redis' clock)
	sent   map[string]bool      // job → the definition reached Redis (in force or not)
	over   map[string]string    // job → the node whose newer definition is in force
	gone   []string             // jobs dropped from the files, whose definition to forget
}

func newDefinitions() *definitions {
	return &definitions{loaded: map[string]time.Time{}, sent: map[string]bool{}, over: map[string]string{}}
}

// load records that this node loaded a (new) definition of job at now.
func (d *definitions) load(job string, now time.Time) {
	d.loaded[job], d.sent[job] = now, false
}

// drop forgets job, removed from the files.
func (d *definitions) drop(job string) {
	delete(d.loaded, job)
	delete(d.sent, job)
	delete(d.over, job)
	d.gone = append(d.gone, job)
}

// due says whether job's expansion must be sent even with nothing due: its definition has
// not reached Redis yet (so that it is in force before a node with an older one plans the
// job), or another's is in force, which may have gone.
func (d *definitions) due(job string) bool { return !d.sent[job] || d.over[job] != "" }

// stamp marks x with job's definition, hash.
func (d *definitions) stamp(x *queue.Expansion, hash string) {
	x.Definition, x.Loaded = hash, d.loaded[x.Job]
}

// retire returns the expansions that tell Redis the dropped jobs are gone.
func (d *definitions) retire() []queue.Expansion {
	var out []queue.Expansion
	for _, job := range d.gone {
		out = append(out, queue.Expansion{Job: job, Definition: "-", Loaded: time.UnixMilli(0)})
	}
	d.gone = nil
	return out
}

// settle takes in what an expansion of exps found: which jobs another node's definition
// supersedes. It says so once per change, publishes the jobs to yield, and loads this
// node's definition again for those whose node is gone, which it returns: they are worth
// expanding at once.
func (e *Engine) settle(ctx context.Context, d *definitions, exps []queue.Expansion, got queue.Expanded) (reload []string) {
	changed := false
	for _, x := range exps {
		if x.Definition == "-" {
			continue
		}
		d.sent[x.Job] = true
		owner, over := got.Superseded[x.Job]
		if over && d.over[x.Job] == "" {
			e.log.Warn("a newer definition of the job, loaded by another node, is in force: this node does not plan the job and leaves its runs to that node",
				"job", x.Job, "node_in_force", owner)
		}
		if !over && d.over[x.Job] != "" {
			e.log.Info("this node's definition of the job is in force again", "job", x.Job)
		}
		if d.over[x.Job] != owner {
			changed = true
		}
		if over {
			d.over[x.Job] = owner
		} else {
			delete(d.over, x.Job)
		}
	}
	if len(got.Superseded) > 0 {
		if nodes, err := e.agenda.Nodes(ctx); err == nil {
			alive := map[string]bool{}
			for _, n := range nodes {
				alive[n.Name] = n.Age < queue.NodeTTL
			}
			for job := range got.Superseded {
				if owner := d.over[job]; owner != "" && !alive[owner] {
					e.log.Warn("the node whose definition of the job was in force is gone: this node's definition takes over",
						"job", job, "node_gone", owner)
					d.load(job, e.clock.now())
					reload = append(reload, job)
				}
			}
		}
	}
	if changed {
		yield := slices.Sorted(maps.Keys(d.over))
		e.yield.Store(&yield)
	}
	return reload
}
