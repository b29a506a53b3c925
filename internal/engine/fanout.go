package engine

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// Broadcast and sharded jobs (config.Job.Broadcast, Shards): an occurrence of such a job is
// decided as a whole by the claim script, like any other. The node that claims it runs no
// handler: it replaces it by its parts (internal/queue, fanout.go), due when it was, which
// any node then claims, runs, retries and records like any occurrence; the handler of a part
// is told its index and the count (sdk.Run.ShardIndex, ShardCount). The end of the last part
// ends the parent in Redis, with what the parent's own end would do, which the fan-out
// prepares here: its failure alert and the dependents of either outcome.
//
// The parts fall due one IdlePoll after their parent. The nodes learnt of the parent's due
// time from the agenda's head, and woke for it together; but they learn of parts that one of
// them added only from a later claim call, at their idle poll, whereas the node that added
// them would claim them all by itself before the others look (the fair share presumes the
// others absent after a few calls). Due an idle poll later, the parts are seen by every
// node's idle poll as the head of the shard, ahead of their due time, and the nodes wake for
// them together: the fair share spreads them, and for a broadcast each node is there to take
// its own. A part thus starts up to an idle poll after the occurrence was due.

// FanOuter replaces a claimed occurrence by its parts.
type FanOuter interface {
	// FanOut replaces f.Claim's occurrence by its parts, or fails with
	// queue.ErrNotFannedOut when the claim is no longer held.
	FanOut(ctx context.Context, f queue.FanOut) error
}

// fanOut replaces a's occurrence, of a broadcast or sharded job, by its parts. When that
// cannot be done now (Redis, or the fleet's nodes, could not be read) the claim is handed
// back with its attempt, to be fanned out again soon, by any node.
func (e *Engine) fanOut(ctx context.Context, a *attempt) {
	c := a.claim
	f := queue.FanOut{Claim: c, Parts: a.job.Shards, Due: c.NotBefore.Add(e.cfg.IdlePoll), Node: e.cfg.Node, ScheduledAt: a.due.UTC(),
		Alert:     failureAlertOf(a.job, c.Occurrence),
		Succeeded: e.dependentsOf(c.Job, c.Occurrence, true), Failed: e.dependentsOf(c.Job, c.Occurrence, false)}
	if a.job.Broadcast {
		nodes, err := e.agenda.Nodes(ctx)
		if err != nil {
			a.log.Warn("occurrence not split into parts: the fleet's nodes could not be read; it is handed back", "err", err)
			e.complete(queue.Completion{Claim: c, Release: true, Delay: handBackDelay}, time.Now().Add(e.cfg.Lease))
			return
		}
		f.Nodes = broadcastNodes(a.job, e.cfg.Node, nodes)
		f.Parts = len(f.Nodes)
	}
	switch err := e.agenda.FanOut(ctx, f); {
	case errors.Is(err, queue.ErrNotFannedOut):
		a.log.Warn("occurrence not split into parts: another node claimed it after this node's lease ran out")
	case err != nil:
		a.log.Warn("occurrence not split into parts; it is handed back", "err", err)
		e.complete(queue.Completion{Claim: c, Release: true, Delay: handBackDelay}, time.Now().Add(e.cfg.Lease))
	default:
		a.log.Info("occurrence split into parts", "parts", f.Parts, "nodes", f.Nodes)
	}
}

// broadcastNodes are the nodes a broadcast occurrence of job runs on, one part each, in
// name order: the live ones (announced within queue.NodeTTL) that the job's constraints
// allow, and self always: it is alive even before its first announcement shows, and it
// claimed the occurrence, which it could only if the job allows it. This is the one place
// that picks them.
func broadcastNodes(job *config.Job, self string, nodes []queue.NodeSeen) []string {
	out := []string{self}
	for _, n := range nodes {
		if n.Age <= queue.NodeTTL && n.Name != self && job.Allows(n.NodeLabels()) {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return out
}

// failureAlertOf is the failure alert of job's occurrence occ, when the job alerts on
// failure: for a broadcast or sharded occurrence, raised by the end of its last part.
func failureAlertOf(job *config.Job, occ string) string {
	if !job.Alert.Has(cron.AlertFailure) {
		return ""
	}
	return cron.AlertID(occ, cron.AlertFailure)
}
