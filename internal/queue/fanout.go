package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Broadcast and sharded occurrences (a job's broadcast or shards): the occurrence JOB@DUE is
// one agenda entry, decided as a whole by the claim script like any other (pause, catch-up,
// overlap, max_concurrent, priority). The node that claims it does not run a handler: it
// calls FanOut, which replaces it, atomically and only while its claim holds, by its parts
// (cron.PartID), due when it was. Each part is an ordinary occurrence of the job: claimed,
// leased, renewed, retried on its own, taken over when its node dies, recorded under its own
// id. The parent keeps its job's overlap slot, and its place under max_concurrent, until
// its last part ended; the completion that ends it (lua/complete.lua) writes the parent's
// record and does what the parent's own end does (failure alert, dependents), in the same
// atomic step, once. A broadcast pins each part to one node (lua/claim.lua leaves it to that
// node while the node calls the shard; after a lease without a call, any node takes it).

// ErrNotFannedOut is returned by FanOut when the caller no longer holds the occurrence's
// claim: another node claimed it since, and fans it out itself.
var ErrNotFannedOut = errors.New("queue: occurrence not fanned out: its claim is no longer held")

// FanOut replaces a claimed occurrence by its parts.
type FanOut struct {
	// Claim is the claim of the occurrence, the parts' parent.
	Claim Claim
	// Parts is how many parts: the job's shards, or for a broadcast len(Nodes).
	Parts int
	// Nodes are, for a broadcast, the node each part is pinned to, in the parts' order;
	// empty for shards, whose parts run wherever there is room.
	Nodes []string
	// Due is when the parts fall due, on Redis' clock: not before the parent's NotBefore,
	// which it is when zero or earlier.
	Due time.Time
	// Node names the node that fans out, for the parent's record.
	Node string
	// ScheduledAt is the parent's due time, for its record.
	ScheduledAt time.Time
	// Alert, if not empty, is the parent's failure alert (cron.AlertID), added by the
	// completion that ends its last part when some part did not succeed.
	Alert string
	// Succeeded and Failed are the dependents (see Completion.Dependents) that the end of
	// the parent writes, when every part succeeded and when some did not.
	Succeeded, Failed []Dependent
}

// fanState is what the join keeps of a parent until its last part ended (lua/complete.lua).
type fanState struct {
	N       int    `json:"n"`
	Node    string `json:"node"`
	Attempt int    `json:"attempt"`
	// Token is a string: Redis' cjson would round a number of its size.
	Token string `json:"token"`
	At    string `json:"at"`
	Alert string `json:"alert"`
	OK    string `json:"ok"`
	KO    string `json:"ko"`
}

// FanOut replaces f.Claim's occurrence by its parts (see the comment above), or returns
// ErrNotFannedOut. It is idempotent: a call go-redis re-sends answers as the first did.
func (q *Queue) FanOut(ctx context.Context, f FanOut) error {
	c := f.Claim
	if f.Parts < 1 || (len(f.Nodes) > 0 && len(f.Nodes) != f.Parts) {
		return fmt.Errorf("queue: fan out %s: %d parts for %d nodes", c.Occurrence, f.Parts, len(f.Nodes))
	}
	st, err := json.Marshal(fanState{N: f.Parts, Node: f.Node, Attempt: c.Attempt, Token: strconv.FormatInt(c.Token, 10),
		At: f.ScheduledAt.UTC().Format(time.RFC3339Nano), Alert: f.Alert,
		OK: dependentLines(f.Succeeded, &Record{Status: StatusSucceeded}), KO: dependentLines(f.Failed, &Record{Status: StatusFailed})})
	if err != nil {
		return fmt.Errorf("queue: fan out %s: %w", c.Occurrence, err)
	}
	due := c.NotBefore
	if f.Due.After(due) {
		due = f.Due
	}
	k := q.keys(c.Shard)
	args := []any{k.lockPrefix(), c.Occurrence, strconv.FormatInt(c.Token, 10), due.UnixMilli(),
		JoinTTL.Milliseconds(), string(st), f.Parts}
	for _, n := range f.Nodes {
		args = append(args, n)
	}
	res, err := q.evalAll(ctx, []call{{script: q.fanout, keys: []string{k.agenda(), k.fan(), k.calls()}, args: args,
		shard: c.Shard, jobs: []string{c.Job}, occs: []string{c.Occurrence}}})
	if err != nil {
		return fmt.Errorf("queue: fan out %s: %w", c.Occurrence, err)
	}
	if n, _ := res[0].(int64); n != 1 {
		return fmt.Errorf("queue: fan out %s: %w", c.Occurrence, ErrNotFannedOut)
	}
	return nil
}
