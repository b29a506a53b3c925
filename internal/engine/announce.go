package engine

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// announceEvery is how often a node tells the fleet it is alive: a third of queue.NodeTTL,
// so that a node is listed as alive through two lost announcements.
const announceEvery = queue.NodeTTL / 3

// announcer tells the fleet, through Redis, that this node is alive and what it runs, until
// ctx ends; then it takes the node off the list. Each time it also looks at the other live
// nodes, and logs once, when it changes, which of them run another job set: the nodes were
// given different job files. A failed call is not logged: the other loops report an outage
// of Redis, once.
func (e *Engine) announcer(ctx context.Context) {
	n := queue.Node{Name: e.cfg.Node, Version: e.cfg.Version, Started: e.clock.node().UTC(), Labels: e.cfg.Labels}
	var drift string               // the nodes last reported as differing, for logging a change once
	var unplaced map[string]string // as last reported
	t := time.NewTicker(announceEvery)
	defer t.Stop()
	for {
		set := e.jobs.Load() // a reload shows at the next announcement
		n.JobSetHash, n.Jobs = set.hash, len(set.list)
		if err := e.agenda.Announce(ctx, n); err != nil && ctx.Err() == nil {
			e.log.Debug("announcing the node failed", "err", err)
		} else if nodes, err := e.agenda.Nodes(ctx); err == nil {
			drift = e.reportDrift(n, nodes, drift)
			e.live.Store(int64(liveNodes(nodes)))
			unplaced = e.place(set, nodes, unplaced)
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.agenda.CallTimeout())
			defer cancel()
			if err := e.agenda.Depart(dctx, e.cfg.Node); err != nil {
				e.log.Debug("taking the node off the fleet's list failed", "err", err)
			}
			return
		case <-t.C:
		}
	}
}

// reportDrift logs the live nodes whose job set differs from self's, when they are not the
// ones last reported (was), and returns them.
func (e *Engine) reportDrift(self queue.Node, nodes []queue.NodeSeen, was string) string {
	var differ []string
	for _, o := range nodes {
		if o.Name != self.Name && o.Age <= queue.NodeTTL && o.JobSetHash != self.JobSetHash {
			differ = append(differ, o.Name)
		}
	}
	slices.Sort(differ)
	now := strings.Join(differ, ",")
	switch {
	case now == was:
	case now == "":
		e.log.Info("job sets agree again: every live node runs the same job files")
	default:
		e.log.Warn("nodes run a different job set: they were given other job files", "nodes", now, "job_set_hash", self.JobSetHash)
	}
	return now
}

// place finds the jobs of set that no live node may run: this one, or one of nodes that
// announced itself within queue.NodeTTL. It logs the change from was once, and publishes
// the jobs for the claims, which record their due occurrences as unplaced.
func (e *Engine) place(set *jobSet, nodes []queue.NodeSeen, was map[string]string) map[string]string {
	var now map[string]string
	for _, j := range set.constrained {
		ok := j.Allows(e.cfg.Labels)
		for _, o := range nodes {
			if ok {
				break
			}
			ok = o.Age <= queue.NodeTTL && j.Allows(o.NodeLabels())
		}
		if !ok {
			if now == nil {
				now = map[string]string{}
			}
			now[j.Name] = j.Placement()
		}
	}
	for job, c := range now {
		if _, ok := was[job]; !ok {
			e.log.Warn("no live node may run the job: its due occurrences wait for one, within its catch-up window", "job", job, "constraints", c)
		}
	}
	for job := range was {
		if _, ok := now[job]; !ok {
			e.log.Info("a live node may run the job again", "job", job)
		}
	}
	e.unplaced.Store(&now)
	return now
}

// liveNodes counts the nodes that announced themselves within queue.NodeTTL, this one
// included even before its own announcement shows: the fair share divides a burst by it.
func liveNodes(nodes []queue.NodeSeen) int {
	n := 0
	for _, o := range nodes {
		if o.Age <= queue.NodeTTL {
			n++
		}
	}
	return max(n, 1)
}
