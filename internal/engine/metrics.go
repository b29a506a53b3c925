package engine

import (
	"slices"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// expectedDue returns which of shards this node believes hold a due occurrence, before it
// claims them: a claim of one of them that gives nothing was lost to another node. A shard
// asked again only because its last batch was full is not one: that its head is due was a
// guess. Without metrics it costs nothing.
func (e *Engine) expectedDue(shards []int) []int {
	if e.cfg.Metrics == nil {
		return nil
	}
	due, _ := e.heads.due(shards, e.clock.now().Add(e.cfg.ClaimAhead))
	return slices.DeleteFunc(due, func(s int) bool { return e.refill[s] })
}

// countClaims counts the outcome of a claim of the shards asked: the occurrences won, and
// the shards of expected that gave neither a claim nor a decision (n counts the claims per
// shard, per is the batch) and did not refuse the call: another node claimed what this one
// expected, or renewed the lease that hid it.
func (e *Engine) countClaims(res queue.Claimed, asked, expected []int, n map[int]int, per int) {
	if e.cfg.Metrics == nil {
		return
	}
	lost := 0
	for _, s := range expected {
		if _, failed := res.Failed[s]; failed || n[s] > 0 || decidedIn(res.Decided, s) {
			continue
		}
		lost++
	}
	e.cfg.Metrics.Claims(len(res.Claims), lost)
	// Only the shards asked: one left for its turn (inTurn) keeps its mark until it is asked.
	for _, s := range asked {
		delete(e.refill, s)
	}
	for s, k := range n {
		if k >= per {
			if e.refill == nil {
				e.refill = map[int]bool{}
			}
			e.refill[s] = true
		}
	}
}

// decidedIn says whether the claim script decided an occurrence of shard.
func decidedIn(ds []queue.Decided, shard int) bool {
	for _, d := range ds {
		if job, _, err := cron.ParseOccurrenceID(d.Occurrence); err == nil && queue.ShardOf(job) == shard {
			return true
		}
	}
	return false
}

// countDecided counts the record that the claim script wrote to history in this node's
// name: an occurrence skipped (paused, overlap) or missed.
func (e *Engine) countDecided(d queue.Decided) {
	if e.cfg.Metrics == nil {
		return
	}
	job, _, err := cron.ParseOccurrenceID(d.Occurrence)
	if err != nil {
		return // not a record of any job's history that this node could name
	}
	e.cfg.Metrics.Recorded(&queue.Record{Job: job, Status: d.Status})
}

// countDropped counts the missed records that this node's expansion wrote, one per job
// whose occurrences older than its catch-up window were passed over.
func (e *Engine) countDropped(jobs []string) {
	for _, j := range jobs {
		e.cfg.Metrics.Recorded(&queue.Record{Job: j, Status: queue.StatusMissed})
	}
}
