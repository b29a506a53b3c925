// Package engine is one node of the fleet: it plans (job set → cron → agenda) and dispatches
// (agenda → lease → handler plugin).
//
// There is no leader. Every node runs the same three loops over the same job set:
//
//   - the expander adds each job's next occurrences (a horizon ahead) to the agenda; the
//     agenda's watermarks make the nodes' duplicate work harmless;
//   - the dispatcher sleeps until the earliest known head of the agenda shards holding its
//     jobs (estimated on its own clock corrected by its measured offset to Redis' clock),
//     then claims what Redis says is due, in one pipelined round trip, and starts a run per
//     claim; a shard that returns a full batch is asked again at once;
//   - the completer batches finished runs into one round trip.
//
// Runs get their own context: it carries the job's timeout and is cancelled by the lease
// keeper (internal/lease) when the lease cannot be proven any more, and at the end of the
// shutdown grace period.
//
// Redis faults are survived: every loop retries with backoff, an outage is logged once when
// it starts and once when it ends, and the occurrences that fell due meanwhile are claimed
// after recovery (they stayed in the agenda) or expanded from the watermarks.
package engine
