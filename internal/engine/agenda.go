package engine

import (
	"context"
	"time"

	"github.com/cronfleet/cronfleet/internal/lease"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// Agenda is the fleet's shared agenda in Redis, as far as the engine uses it: one small
// interface per part of the engine. internal/queue implements it; the engine's tests drive
// the dispatcher over an in-memory one on fake time.
type Agenda interface {
	Planner
	Claimer
	Completer
	lease.Renewer
	ClockReader
	EvictionChecker
	Announcer
	OutputWriter
	DependentsCarrier
	UpstreamReader
	HistoryReader
	FanOuter
}

// The queue is the agenda the runner wires in.
var _ Agenda = (*queue.Queue)(nil)

// Planner is what the expander needs: how far each job was expanded by the fleet, and a way
// to add occurrences that any number of nodes may send, each added once ever.
type Planner interface {
	// Watermarks returns, for each of jobs that has one, the due time of the newest
	// occurrence ever added: where expansion resumes after the whole fleet was down.
	Watermarks(ctx context.Context, jobs []string) (map[string]time.Time, error)
	// Expand adds the occurrences of exps after their jobs' watermarks (for a new job: not
	// before Redis' now), under the definition of each job in force, and returns the jobs'
	// watermarks afterwards and which jobs a newer definition supersedes.
	Expand(ctx context.Context, exps []queue.Expansion) (queue.Expanded, error)
	// Lost is signalled when the agenda learns that Redis lost the state of shards.
	Lost() <-chan struct{}
	// Recover writes back what this node knows of the shards Redis lost since the last
	// call, and returns them, with where to plan their jobs again from.
	Recover(ctx context.Context) ([]queue.Loss, error)
}

// Claimer is what the dispatcher needs: the occurrences that are due by Redis' clock.
type Claimer interface {
	// ClaimPlaced claims up to max occurrences from each of shards that are due, or become
	// due within lead, by Redis' clock, and tells when each shard is next worth asking. A
	// call that reaches Redis after deadline (on Redis' clock) claims nothing. The
	// occurrences of the jobs in yield are left to other nodes. Each shard's call takes at
	// most this node's fair share of what is due there (p), and says where it stopped at it.
	ClaimPlaced(ctx context.Context, shards []int, max int, lead time.Duration, deadline time.Time, yield []string, p queue.Placement) (queue.Claimed, error)
	// CallTimeout is how long the agenda waits for Redis' reply to a call.
	CallTimeout() time.Duration
}

// Completer is what the completer needs: recording finished runs, only while their lease is
// still theirs.
type Completer interface {
	// Complete applies cs and reports for each whether it was accepted (a refused one
	// belongs to a later attempt), and in which shards a waiting occurrence became due.
	Complete(ctx context.Context, cs []queue.Completion) (queue.Completed, error)
}

// ClockReader reads Redis' clock, from which the engine estimates when to wake up (see
// redisClock); it never decides what is due.
type ClockReader interface {
	// Time returns Redis' clock.
	Time(ctx context.Context) (time.Time, error)
}

// Announcer is what the node's announcer needs: the fleet's list of its nodes.
type Announcer interface {
	// Announce records that the node is alive now, and what it runs.
	Announce(ctx context.Context, n queue.Node) error
	// Depart takes the node off the list: it stopped cleanly.
	Depart(ctx context.Context, name string) error
	// Nodes returns the fleet's nodes, with how long ago each announced itself.
	Nodes(ctx context.Context) ([]queue.NodeSeen, error)
}

// EvictionChecker is the check that Redis cannot evict keys: an evicted lock or watermark
// would run an occurrence twice.
type EvictionChecker interface {
	// CheckEviction fails with queue.ErrEviction if Redis may evict keys.
	CheckEviction(ctx context.Context) error
}

// OutputWriter is what a run's live output needs: its lines in the occurrence's output
// stream, where any node can read them while the handler runs.
type OutputWriter interface {
	// AppendOutput adds a batch of lines, and maybe the attempt's end, to the stream.
	AppendOutput(ctx context.Context, o queue.Output) error
}
