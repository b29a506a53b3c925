// Package engine is one node of the fleet: it plans (job set → cron → agenda) and dispatches
// (agenda → lease → handler plugin).
//
// There is no leader. Every node runs the same loops over the same job set:
//
//   - the expander (expand.go) adds each job's next occurrences, a horizon ahead, to the
//     agenda; the agenda's watermarks make the nodes' duplicate work harmless;
//   - the dispatcher (dispatch.go) sleeps until the earliest known head of the agenda shards
//     holding its jobs, then claims what Redis says is due (or falls due within ClaimAhead)
//     in one pipelined round trip, and starts a run per claim; a shard that returned a full
//     batch is asked again at once, and with every slot taken it waits for a run to end;
//   - the fair share (dispatch.go, lua/claim.lua in internal/queue): with several live nodes
//     (the announcer counts them), each shard's call takes at most this node's share of what
//     is due there, DUE x FREE / (1 + W), where FREE is the node's free share of its
//     capacity and W the live nodes that have not called for the same burst yet; a call that
//     stopped at its share yields (shareYield) before asking again, so that the others, which
//     woke for the same head, claim theirs. While the others have room and call within the
//     yield, no node takes more than its share plus one (rounding) per shard of a burst; a
//     node left alone presumes one more node absent per call and takes the rest within as
//     many calls as there are live nodes;
//   - each run (execute.go) goes to its handler plugin at once, with the instant before
//     which the plugin must not start it, under its lease and the job's timeout, and its
//     outcome decides the occurrence's: done, retried or handed back;
//   - the completer (complete.go) batches finished runs into one round trip;
//   - the carrier (after.go) moves the ends of upstream runs, which their completions left
//     in their shards' outboxes, into the shards of the jobs that run after them;
//   - a claimed occurrence of a broadcast or sharded job runs no handler (fanout.go): it is
//     replaced by its parts, which run like any occurrence, each told its index and count.
//
// Clocks (clock.go): Redis' clock decides what is due. A node keeps one redisClock, fed by
// the TIME in Redis' replies, with two views of it: an estimate on the node's own clock
// (Config.Now) plus a measured offset, which decides when to wake up and ask, and a lower
// bound on the monotonic clock, which decides when a claimed run may start, never before it
// is due. Every instant handed on, to the lease keeper or the plugin host, is a monotonic
// time.Now reading, never a Config.Now one.
//
// The agenda (agenda.go) is an interface of the engine's own, one small interface per part
// that uses it; internal/queue implements it over Redis, and the tests drive the engine over
// an in-memory one on fake time. The engine imports no Redis client: the queue reports
// Redis' error replies as queue.ReplyError.
//
// Runs get their own context: it carries the job's timeout and is cancelled by the lease
// keeper (internal/lease) when the lease cannot be proven any more, and at the end of the
// shutdown grace period (engine.go), after which the occurrence is handed back.
//
// A run's output lines go to its occurrence's output stream in Redis as the handler writes
// them (liveout.go), so that any node can show them live: in batches, from a goroutine the
// run starts with its first line and stops at its end, before the outcome is recorded and
// within a bounded wait. A slow Redis makes lines drop, counted in a marker line, never
// holds the handler up. A run without output writes nothing there, not even its end: the
// fleet runs many such occurrences a second, and a reader learns from the agenda that the
// occurrence finished.
//
// Redis faults are survived (outage.go): every loop retries with a jittered exponential
// backoff of its own, an outage is logged once when it starts and once when it ends (and
// again if its kind changes, such as LOADING after a restart), and the occurrences that fell
// due meanwhile are claimed after recovery (they stayed in the agenda) or expanded from the
// watermarks. A run's history record is bounded in size (record.go).
//
// Metrics (metrics.go, Config.Metrics) count what the node decided where it is decided: a
// run record once Redis accepted it (so the fleet's counters sum to its histories), the
// records the claim script and the expansion wrote in the node's name (skipped, missed),
// and claims won and lost. Without metrics none of it costs anything.
package engine
