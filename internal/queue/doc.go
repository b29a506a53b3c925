// Package queue owns the agenda: the Redis keys and Lua scripts through which identical
// nodes share one schedule without a leader.
//
// # Keys
//
// Every key starts with the hash tag {cf:NAMESPACE:SHARD} (keys.go builds them all), so the
// keys one script touches live in one Redis Cluster slot, and several fleets can share a
// Redis. Jobs are spread over Shards shards by a hash of their name. Per shard:
//
//	agenda        zset  occurrence id → earliest instant (ms) it may be claimed
//	lock:OCC      str   fencing token of the lease holder (PX = lease), then a done/retry marker;
//	                    "excluded" for an occurrence a calendar excludes, until after its due time
//	fence         hash  job → last fencing token handed out
//	tokens        hash  occurrence id → the last token handed out for it (which completion counts)
//	attempts      hash  occurrence id → claims so far
//	wm            hash  job → due time (ms) of the newest occurrence ever added
//	counts        hash  job → occurrences ever added, for jobs with a max_runs
//	hist:JOB      list  run records, newest first, capped
//	req:ID        str   cached reply of a claim call (seconds)
//	paused        hash  job → its fleet-wide pause (JSON: note, by, at)
//	defs          hash  job → "HASH LOADEDMS": the job's definition in force, the newest loaded
//	policy        hash  job → "OVERLAP CATCHUP WINDOWMS", of the definition in force
//	alerts        hash  job → "KINDS LATEMS" of its alert block, of the definition in force
//	running       hash  job → the occurrence holding the job's overlap slot
//	wait:JOB      zset  occurrences waiting for the job's overlap slot → due (ms)
//	share         hash  node → "LASTMS ROUNDS": its last calls for a burst (fair share)
//	holders:JOB   set   occurrences claimed under the job's max_concurrent, pruned of
//	                    those whose lock is no longer a live lease
//	capped:JOB    zset  occurrences waiting for room under the job's max_concurrent → score
//	capped        hash  job → 1 while capped:JOB holds occurrences
//	cancel        hash  occurrence id → the occurrence that cancels it (cancel_other)
//	next          hash  occurrence id → not-before (ms) of its job's next occurrence
//	late          hash  occurrence id → 1 when it was added after it was due (catch-up)
//	trig:OCC      str   marks a trigger applied (a day), so a re-sent one adds nothing
//	deps          hash  "OCC\tJOB" → what JOB, which runs after OCC's job, needs of OCC's end:
//	                    the outbox that DrainDependents empties into JOB's shard
//	join:OCC      hash  of an occurrence run after others: upstream job → "UPOCC MET STATUS"
//	                    for each upstream that ended, "!" once decided; expires (JoinTTL)
//	out:OCC       strm  the occurrence's output lines, every attempt's, with an end marker per
//	                    attempt; capped (OutputLines), expiring OutputRetention after an end
//	epoch         hash  id, seq, at, lost, hold, from, previd, prevseq, and per node n:NODE
//	                    (its last call's seq) and p:NODE (its seq in the state a loss found):
//	                    the lost-state guard (guard.go); settle, afrom, ato: the last gap
//	                    without calls (lua/lib.lua)
//	fan           hash  of the occurrences replaced by their parts whose parts have not all
//	                    ended: OCC → the join's state (JSON), "OCC\tI" → how part I ended,
//	                    "OCC\t#" → parts ended; and PART → its pinned node (broadcast)
//	calls         hash  node → its last claim call of the shard (ms): a broadcast part's pin
//	                    holds while its node calls
//
// Fence, tokens, attempts and running also hold one field named "" whose value says why it
// is there (keepTables in lua/lib.lua): its length keeps each of them a hash table. Their
// other fields come and go with the claims, and without it they would empty after each
// burst, be deleted by Redis, and be rebuilt at the next in Redis' compact encoding, whose
// every lookup scans the whole hash; that scan was the largest single cost of a claim at
// thousands of jobs a second (docs/benchmarks.md, "Redis' cost per occurrence"). Nothing
// reads these hashes whole.
//
// The fleet's list of nodes belongs to no shard: its keys share the tag {cf:NAMESPACE}.
//
//	nodes         hash  node name → what it says of itself (JSON: version, job set hash, …)
//	seen          hash  node name → when it last announced itself (ms, Redis' clock)
//	audit         stream the actions taken on the fleet: who paused, triggered, … (capped)
//
// # Invariants
//
//   - Expansion is idempotent (lua/expand.lua): an occurrence is added only if its due time
//     lies after its job's watermark, which then moves past it. Any number of nodes, restarts
//     or reloads add each occurrence once, and a completed one is never added again. Its
//     score, from which it may be claimed, may lie after its due time (a job's jitter), so
//     the watermark counts due times, not scores.
//   - An occurrence that a calendar excludes is never added: expand.lua writes its skipped
//     record instead, under the same watermark rule, so once, and marks its lock so that a
//     replan that looks behind the watermark does not write it again. Nothing claims it,
//     so no handler ever starts it, and it holds no overlap slot and no max_runs count.
//   - Due is decided by Redis' TIME inside claim.lua, never by a node's clock, and so is a
//     job's pause: a claim of a paused job's occurrence tells the claimer to record it as
//     skipped, which it does through the same completion as a run.
//   - A claim takes the lock, hands out the job's next fencing token (max(last + 1, Redis'
//     time in ms × 1000): strictly increasing per job, and still increasing after Redis forgot
//     the last one) and moves the occurrence's score to the lease's expiry: a live lease
//     hides it from other claimers, an expired one makes it due again by itself, with
//     attempt + 1. A claim made ahead of its not-before holds a short lease, renewed to the
//     full one once the run has started.
//   - Renewal and completion compare the lock's value to the caller's token; nothing deletes a
//     lock the caller may not own. A completion counts while its lease is live, or after it
//     expired as long as no later claim of the occurrence exists (tokens).
//   - Every state-changing script checks the shard's epoch against the caller's (guard.go):
//     a Redis that lost state is detected by the first call that sees it, claims are held
//     for a lease, and the nodes write back what they know. After a gap without calls (Redis
//     was unreachable) a lease that expired meanwhile with no later claim still counts as
//     held for a settle, so its holder can report (lua/lib.lua).
//   - An alert (cron.AlertID: WATCHED~alert-KIND) is an occurrence of the watched one's job,
//     so it lives in the same shard, and is added by the script that records its event, in
//     the same atomic step: a failure by complete.lua with the failed record, a miss by
//     claim.lua (or expand.lua, for what it passes over) with the missed record, a late
//     watch by expand.lua with its occurrence, due late_after past its not-before. Each
//     event is recorded once, so its alert is added once (ZADD NX besides). claim.lua runs
//     alerts apart from their job's policies: they never hold or wait for the overlap slot
//     and are never missed, skipped or cancelled; a late watch is decided when due, and
//     runs only if its occurrence has not started and its job is not paused. The alerts
//     hash is apart from policy because nodes of earlier versions parse policy strictly
//     ('^(%S+) (%S+) (%d+)$'), and must still read the policies of jobs that alert.
//   - A job that runs after others (cron.DependentID: JOB@INSTANT~after) may live in another
//     shard, another Cluster slot, than its upstreams, so no script can add its occurrence
//     with the upstream's end. The completion that counts writes the end into its own
//     shard's deps outbox, in the same step (lua/complete.lua), exactly once; nodes carry
//     outbox entries into the downstream's shard (lua/join.lua) and delete them only after:
//     at least once. The join key makes carrying idempotent (an upstream is one field; a
//     decided occurrence is not decided again), so the downstream is added once, when every
//     upstream of its instant has ended as required, or recorded skipped once when one ended
//     otherwise. The outbox and join keys are outside the lost-state guard: across a loss
//     of Redis' state a dependent run is at most once, like an alert.
//   - Every script is safe to run twice for the same arguments, because go-redis re-sends a
//     command whose reply timed out: claims cache their reply, completions leave a marker.
//   - Priority changes which due entries a claim takes, never the agenda's scores: the
//     agenda stays ordered by due time, and a claim that may take fewer than are due takes
//     the highest effective priority first (lua/claim.lua). A caller claiming from several
//     shards first counts each one's due entries by effective priority (lua/rank.lua, read
//     only) and tells each call how many to take and the least priority to take, so the
//     order holds across shards, not only within one (priority.go). Where the room would
//     take part of a lower effective priority with higher ones, a call takes the higher
//     ones only: runs claimed together start together, in no order.
//   - Scripts are batched per shard and shards are pipelined, so one round trip claims,
//     renews or completes many occurrences.
//   - Broadcast and sharded occurrences (fanout.go) are decided whole, then replaced by
//     their parts, by lua/fanout.lua, only while the caller's claim holds: once, since the
//     parent leaves the agenda and its lock becomes a "fan:TOKEN" marker. Each part is an
//     ordinary occurrence, so every invariant above holds for it. Its end for good is
//     counted once per index (HSETNX) by the completion that counts; the one that counts the
//     last index ends the parent in the same step (record, overlap slot, alert, dependents),
//     so the parent ends exactly once whatever is re-sent. The parent holds its job's
//     overlap slot, and its place under max_concurrent, until then.
//
// # Files
//
// keys.go builds the keys and lua/ holds the scripts, each with a header stating its KEYS,
// ARGV and reply. queue.go has the Queue and Redis' clock (Time); eval.go runs script calls
// in one pipeline, by SHA with a fallback to EVAL when Redis lost its script cache; then one
// file per operation: expand.go (Expand, Watermarks), claim.go (Claim, Renew), priority.go
// (the order of a claim across shards), complete.go
// (Complete), deps.go (DrainDependents, Upstream), fanout.go (FanOut), record.go (run records and History), output.go (a run's live output:
// AppendOutput, ReadOutput), check.go (CheckEviction), stats.go (Stats, what a monitor
// reads of the agenda and the nodes), guard.go (the
// lost-state guard: Lost, Recover). lua/lib.lua holds what several scripts share, the guard
// and the token rule among it.
//
// # Live output
//
// A running handler's output reaches every node through the occurrence's output stream, so
// any node can show it live. Its key is derived from the occurrence id alone (the job is the
// part before the last '@'), in the shard's tag. Writing it is the engine's choice per run: a
// run without output writes nothing, and a reader learns that such a run ended from the
// agenda, which no longer holds a finished occurrence (ReadOutput asks the agenda before the
// stream, on one connection, so it cannot miss lines written before the completion). Lines
// reach Redis in batches; a re-sent batch is recognised at the stream's end and added once.
//
// # Errors
//
// Errors carry the operation ("queue: claim: …"). An error reply from Redis (LOADING,
// READONLY, OOM, …) comes back as a *ReplyError naming its kind (reply.go), so callers can
// tell a Redis that refused a call from one that could not be reached without knowing the
// Redis client; the client's error stays wrapped.
//
// ErrorKind sorts any error of a Redis call into a closed set of kinds (timeout, connection
// refused or reset, and the reply codes an operator acts on), and a Queue counts each failure
// once through Config.Metrics, NOSCRIPT included, though it recovers from that by itself.
package queue
