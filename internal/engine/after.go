package engine

import (
	"context"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// Dependencies (a job's after blocks): the end of an upstream run is written, by the
// completion that records it, into its own shard's outbox (internal/queue); the carrier
// loop moves what waits there into the downstream jobs' shards, where each downstream
// occurrence (cron.DependentID) is added once every upstream of its instant has ended as
// its after blocks require. From there it is claimed, leased, retried and recorded like any
// occurrence added by hand. The engine's part: the completion names the dependents its end
// concerns, the carrier drains the outboxes of the node's shards, and a downstream run
// learns its upstream occurrences, for its handler and its record.

// DependentsCarrier moves the upstream ends waiting in shards' outboxes into the
// downstream jobs' shards, and says how many occurrences that added, in which shards.
type DependentsCarrier interface {
	DrainDependents(ctx context.Context, shards []int) (added int, in []int, err error)
}

// UpstreamReader reads the upstream occurrences whose ends ran a downstream occurrence.
type UpstreamReader interface {
	Upstream(ctx context.Context, occ string) ([]string, error)
}

// carryEvery is how often the carrier drains its shards' outboxes without being told of a
// new entry: what a node that died left behind, and the entries of other nodes' runs.
const carryEvery = time.Second

// dependents are the downstream entries that completing a with how writes: for each job
// after a's whose after block this end concerns. An end counts when the occurrence is over
// with a run's outcome: succeeded, or failed for good (failed, abandoned). A retrying
// attempt has not ended; a skipped, cancelled or missed occurrence has no outcome to wait
// for. A job after a single upstream is told only of the ends it runs after, since no
// other upstream waits to be joined; a fan-in is told of every end, to record a skip once
// all its upstreams ended.
// A part of a broadcast or sharded occurrence has no dependents of its own: the end of its
// last part ends the parent, with the dependents prepared at the fan-out (fanout.go).
func (e *Engine) dependents(a *attempt, how queue.Completion) []queue.Dependent {
	if a.job == nil || how.Retry || how.Release || cron.IsAlert(a.claim.Occurrence) || cron.IsPart(a.claim.Occurrence) {
		return nil
	}
	var success bool
	switch a.rec.Status {
	case queue.StatusSucceeded:
		success = true
	case queue.StatusFailed, queue.StatusAbandoned:
	default:
		return nil
	}
	return e.dependentsOf(a.claim.Job, a.claim.Occurrence, success)
}

// dependentsOf are the downstream entries of the end of job's occurrence occ, succeeded or
// failed for good (see dependents).
func (e *Engine) dependentsOf(job, occ string, success bool) []queue.Dependent {
	var out []queue.Dependent
	for _, d := range e.jobs.Load().after[job] {
		for _, up := range d.After {
			if up.Job != job {
				continue
			}
			met := up.On.Matches(success)
			if !met && len(d.After) == 1 {
				break
			}
			id := cron.DependentID(d.Name, occ)
			_, at, _ := cron.ParseOccurrenceID(id) // derived from a claimed id, which parsed
			out = append(out, queue.Dependent{Job: d.Name, Occurrence: id, ScheduledAt: at, Needed: len(d.After), Met: met})
		}
	}
	return out
}

// downstream indexes jobs by the jobs they run after.
func downstream(jobs []*config.Job) map[string][]*config.Job {
	m := map[string][]*config.Job{}
	for _, j := range jobs {
		for _, a := range j.After {
			m[a.Job] = append(m[a.Job], j)
		}
	}
	return m
}

// carrier drains the outboxes of the node's shards until ctx is done: at once when a
// completion of this node wrote to one (carry), and every carryEvery for the rest. Any
// number of nodes may drain the same outbox; carrying an entry twice adds nothing.
func (e *Engine) carrier(ctx context.Context) {
	t := time.NewTicker(carryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.carry:
		}
		set := e.jobs.Load()
		if len(set.after) == 0 {
			continue // no job of this node's runs after another
		}
		added, in, err := e.agenda.DrainDependents(ctx, set.shards)
		if err != nil {
			if ctx.Err() == nil {
				// Left in the outboxes: the next round carries them.
				e.log.Warn("carrying the ends of upstream runs failed", "err", err)
			}
			continue
		}
		for _, s := range in {
			e.heads.lower(s, time.Time{})
		}
		if added > 0 {
			e.log.Debug("occurrences added after their upstream runs", "added", added)
			e.notify()
		}
	}
}

// carryNow asks the carrier to drain at once: a completion wrote to an outbox.
func (e *Engine) carryNow() {
	select {
	case e.carry <- struct{}{}:
	default:
	}
}

// upstream returns the upstream occurrences of occ, when it runs after others; none when
// they cannot be read, since the run is worth more than the names.
func (e *Engine) upstream(ctx context.Context, occ string) []string {
	if parent, _, _, ok := cron.ParsePart(occ); ok {
		occ = parent // a part of an occurrence run after others runs after them too
	}
	if !cron.IsDependent(occ) || cron.IsAlert(occ) {
		return nil
	}
	ups, err := e.agenda.Upstream(ctx, occ)
	if err != nil {
		e.log.Warn("reading the upstream runs of an occurrence", "occurrence", occ, "err", err)
	}
	return ups
}
