package queue

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// Shards is the fixed number of agenda shards per namespace. Each shard's keys share one hash
// tag, so its scripts run on Redis Cluster, and the shards spread a fleet's load over a
// cluster's slots. It is a constant, not a setting: changing it would move jobs to other
// shards and strand the occurrences already scheduled in the old ones.
const Shards = 16

// ShardOf returns the agenda shard that owns job. Every node must agree, so it depends on the
// job's name alone.
func ShardOf(job string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(job))
	return int(h.Sum32() % Shards)
}

// fleetKeys builds the keys that belong to the namespace as a whole rather than to a shard;
// they share the tag {cf:NAMESPACE}, so a script may touch all of them on Redis Cluster.
type fleetKeys struct {
	tag string
}

func namespaceKeys(namespace string) fleetKeys { return fleetKeys{tag: "{cf:" + namespace + "}"} }

// nodes is a hash node name → what the node said of itself (JSON, see Node).
func (k fleetKeys) nodes() string { return k.tag + ":nodes" }

// seen is a hash node name → when it last announced itself (ms, Redis' clock).
func (k fleetKeys) seen() string { return k.tag + ":seen" }

// audit is a stream of the actions taken on the fleet (AuditEntry, JSON in field "e").
func (k fleetKeys) audit() string { return k.tag + ":audit" }

// keys builds every Redis key of one shard. All of them share the tag {cf:NAMESPACE:SHARD}.
type keys struct {
	tag string
}

func shardKeys(namespace string, shard int) keys {
	return keys{tag: "{cf:" + namespace + ":" + strconv.Itoa(shard) + "}"}
}

// agenda is the sorted set of scheduled occurrences: member = occurrence id, score = the
// earliest instant (ms, Redis clock) at which it may be claimed: its due time, then the
// expiry of the lease of whoever holds it, or the end of its retry backoff.
func (k keys) agenda() string { return k.tag + ":agenda" }

// fence is a hash job → last fencing token handed out for that job.
func (k keys) fence() string { return k.tag + ":fence" }

// attempts is a hash occurrence id → number of claims so far (the current attempt). Like
// fence, running and tokens it also holds a field "" that keeps it a hash table (doc.go).
func (k keys) attempts() string { return k.tag + ":attempts" }

// watermarks is a hash job → due time (ms) of the latest occurrence ever added to the agenda.
// Expansion only adds occurrences after it, so a finished occurrence is never added again.
func (k keys) watermarks() string { return k.tag + ":wm" }

// counts is a hash job → how many of its scheduled occurrences were ever added, kept for the
// jobs with a max_runs.
func (k keys) counts() string { return k.tag + ":counts" }

// lockPrefix + occurrence id is the lock of one occurrence: the holder's fencing token with
// the lease as TTL; after completion a short-lived "done:TOKEN"/"retry:TOKEN" marker that
// makes a re-sent completion idempotent.
func (k keys) lockPrefix() string { return k.tag + ":lock:" }

// historyPrefix + job is a capped list of that job's run records, newest first.
func (k keys) historyPrefix() string { return k.tag + ":hist:" }

// paused is a hash job → the pause (JSON: note, by, at) of a job paused fleet-wide. The claim
// script reads it, so a pause takes effect at the next claim of any node.
func (k keys) paused() string { return k.tag + ":paused" }

// policy is a hash job → "OVERLAP CATCHUP WINDOWMS": the job's overlap and catch-up
// policies as its last expansion sent them, for the claim script.
func (k keys) policy() string { return k.tag + ":policy" }

// alerts is a hash job → "KINDS LATEMS" (KINDS: a comma list of failure, missed, late;
// LATEMS: the late_after of late), for the jobs with an alert block in their definition in
// force. It is apart from policy, whose format nodes of earlier versions read strictly:
// those must go on reading the policies of jobs that alert.
func (k keys) alerts() string { return k.tag + ":alerts" }

// running is a hash job → the occurrence holding the job's overlap slot: claimed and not
// finished (it may be waiting for a retry).
func (k keys) running() string { return k.tag + ":running" }

// waitPrefix + job is a sorted set of the job's occurrences waiting for its overlap slot
// (buffer_one, buffer_all, cancel_other, and occurrences added by hand), score = due time.
func (k keys) waitPrefix() string { return k.tag + ":wait:" }

// share is a hash node → "LASTMS ROUNDS": each node's last claim call that found something
// due, and how many it made in a row, from which the claim script tells how many nodes
// still come for a burst (the fair share, see lua/claim.lua).
func (k keys) share() string { return k.tag + ":share" }

// holdersPrefix + job is a set of the job's occurrences claimed under its max_concurrent;
// those whose lock is no longer a live lease are pruned as it is read (lua/claim.lua).
func (k keys) holdersPrefix() string { return k.tag + ":holders:" }

// cappedPrefix + job is a sorted set of the job's occurrences waiting for room under its
// max_concurrent, score = the score they had on the agenda.
func (k keys) cappedPrefix() string { return k.tag + ":capped:" }

// unplacedPrefix + job is a sorted set of the job's occurrences that no live node may run
// (its constraints match none), by due time, until one that may appears (lua/claim.lua).
func (k keys) unplacedPrefix() string { return k.tag + ":unplaced:" }

// unplaced is a hash job → 1 while unplacedPrefix + job holds occurrences.
func (k keys) unplaced() string { return k.tag + ":unplaced" }

// top is the highest priority this shard's ranked claims took within the last
// PrioritySettle, and when ("PRIORITY MS", expiring with the settle; lua/claim.lua).
func (k keys) top() string { return k.tag + ":top" }

// capped is a hash job → 1 while cappedPrefix + job holds occurrences: what each claim
// call looks at to let them back in.
func (k keys) capped() string { return k.tag + ":capped" }

// cancel is a hash occurrence id → the occurrence replacing it (cancel_other): the holder's
// next renewal, or the next claim, learns that the run must stop.
func (k keys) cancel() string { return k.tag + ":cancel" }

// next is a hash occurrence id → the not-before instant (ms) of its job's next occurrence,
// from which the claim script tells whether a later one fell due too (catch-up latest).
func (k keys) next() string { return k.tag + ":next" }

// defs is a hash job → "HASH LOADEDMS": the definition in force, the newest loaded by any
// node (see lua/expand.lua).
func (k keys) defs() string { return k.tag + ":defs" }

// late is a hash occurrence id → 1 for occurrences added only after they were due, because
// no node was expanding: the claim script applies the job's catch-up policy to them.
func (k keys) late() string { return k.tag + ":late" }

// epoch is a hash that tells whether Redis lost the shard's state (see guard.go): id, seq,
// at (the last guarded write), lost, hold and from.
func (k keys) epoch() string { return k.tag + ":epoch" }

// tokens is a hash occurrence id → the last fencing token handed out for it: a completion
// counts only while no later claim exists (lua/complete.lua).
func (k keys) tokens() string { return k.tag + ":tokens" }

// triggered + occurrence id marks a trigger as applied, for a day: a trigger call that
// go-redis re-sends after its occurrence already ran adds nothing.
func (k keys) triggered(id string) string { return k.tag + ":trig:" + id }

// deps is a hash "OCC\tJOB" → what JOB, which runs after OCC's job, needs to know of OCC's
// end: written by the completion that records the end (lua/complete.lua), drained by nodes
// into JOB's shard (deps.go), since that may be another Cluster slot.
func (k keys) deps() string { return k.tag + ":deps" }

// joinPrefix + occurrence id is a hash of the upstream runs that ended for an occurrence of a
// job that runs after others (lua/join.lua), and whether it was decided; it expires.
func (k keys) joinPrefix() string { return k.tag + ":join:" }

// fan is a hash of the occurrences replaced by their parts (broadcast, shards; fanout.go),
// whose parts have not all ended: parent occurrence → the join's state (JSON, fanState),
// "PARENT\tINDEX" → the status each ended part ended with, "PARENT\t#" → how many ended;
// and for a broadcast, part occurrence → the node it is pinned to, until it ended.
func (k keys) fan() string { return k.tag + ":fan" }

// calls is a hash node → when it last called the claim script of this shard (ms, Redis'
// clock): a part pinned to a node that stopped calling is taken over by the others.
func (k keys) calls() string { return k.tag + ":calls" }

// request + id caches the reply of one claim call, so a claim that go-redis re-sends after a
// lost reply returns the same claims instead of orphaning them.
func (k keys) request(id string) string { return k.tag + ":req:" + id }

// output is the stream of one occurrence's output lines, all attempts in order, capped and
// expiring (output.go).
func (k keys) output(occ string) string { return k.tag + ":out:" + occ }

// typeOf is the Redis type cronfleet gives key, one of this shard's.
func (k keys) typeOf(key string) string {
	rest := strings.TrimPrefix(key, k.tag+":")
	switch {
	case rest == "agenda", strings.HasPrefix(rest, "wait:"), strings.HasPrefix(rest, "unplaced:"), strings.HasPrefix(rest, "capped:"):
		return "zset"
	case strings.HasPrefix(rest, "holders:"):
		return "set"
	case strings.HasPrefix(rest, "hist:"):
		return "list"
	case strings.HasPrefix(rest, "lock:"), strings.HasPrefix(rest, "trig:"), strings.HasPrefix(rest, "req:"), rest == "top":
		return "string"
	case strings.HasPrefix(rest, "out:"):
		return "stream"
	}
	return "hash"
}
