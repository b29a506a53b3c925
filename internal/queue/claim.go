package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/cronfleet/cronfleet/internal/lease"
)

// Claim is one occurrence won by this node.
type Claim struct {
	// Occurrence is the claimed occurrence's id, "JOB@DUE" (cron.OccurrenceID): the same on
	// every attempt and node, so handlers can deduplicate on it.
	Occurrence string
	// Job is the job's name, the part of Occurrence before its last '@'.
	Job string
	// Shard is the agenda shard whose keys hold the occurrence and its lock (ShardOf(Job));
	// renewal and completion must go to the same shard.
	Shard int
	// Attempt counts the claims of this occurrence, this one included.
	Attempt int
	// Token is the fencing token: strictly larger than every earlier claim's of the same job.
	Token int64
	// NotBefore is when the occurrence may start, on Redis' clock: its due time, or the end
	// of its retry backoff. A claim made ahead (see Claim's lead) must wait for it.
	NotBefore time.Time
	// TTL is the lease the claim gave the lock: the full lease, or for a claim made ahead of
	// NotBefore, until Config.AheadGrace past it; the holder renews it once the run started.
	TTL time.Duration
}

// Lease returns the lease this claim holds.
func (c Claim) Lease() lease.Lease {
	return lease.Lease{Occurrence: c.Occurrence, Shard: c.Shard, Token: c.Token, Attempt: c.Attempt}
}

// Claimed is the outcome of one Claim call.
type Claimed struct {
	Claims []Claim
	// Now is Redis' clock at the end of the last shard's claim script: a lower bound of its
	// clock when the reply arrives. The claims' leases and agenda scores count from the TIME
	// read at the start of their script, which may be earlier (by a millisecond boundary, or
	// by however long Redis was descheduled), so Now+Lease is not the leases' expiry.
	Now time.Time
	// Heads is, per shard asked, the score of its earliest remaining entry: when it is next
	// worth asking. A shard missing from Heads has an empty agenda.
	Heads map[int]time.Time
	// Decided are the occurrences the claim script recorded in history instead of handing
	// them out (paused, overlap, catch-up): for the caller to log.
	Decided []Decided
	// Failed holds, per shard that refused the call (a key of the wrong type), its
	// *ShardError; the other shards' claims are in Claims.
	Failed map[int]error
	// Stuck are occurrences that could not be decided because a key of their own holds
	// another type: each is due again a lease later, and the rest of its shard went on.
	Stuck []Stuck
	// Shared holds the shards whose call stopped at the caller's fair share while more was
	// due (Placement): the caller lets the other nodes claim before it asks again.
	Shared map[int]bool
}

// Placement is what a claim call tells the claim script about the fleet and its caller, so
// that a burst is shared among the nodes (see lua/claim.lua). Its zero value shares
// nothing: the call takes what is due, up to its max.
type Placement struct {
	// Nodes is how many live nodes share the agenda, the caller included.
	Nodes int
	// Free is the caller's free share of its capacity, from 0 to 1: a busier node takes a
	// smaller share.
	Free float64
	// Window is how long a node's call counts as its part of the same burst: longer than
	// the time between the nodes' calls for one burst, shorter than between bursts.
	Window time.Duration
	// Limits is each capped job's max_concurrent: the most runs of it at once across the
	// fleet, decided by the claim script. The caller's job set is the one in force for
	// the jobs it claims (see yield), so its limits are the fleet's.
	Limits map[string]int
	// Priorities is the priority of each job whose priority is not DefaultPriority: when
	// more is due than the caller may take, the highest effective priority is claimed
	// first, across the shards of the call (see priority.go). Like Limits, the caller's.
	Priorities map[string]int
	// Total, with Priorities, bounds what the whole call takes, over all its shards: the
	// shards' calls share it by rank (see priority.go), so a call may ask more shards than
	// Total and max is each shard's most. Zero for max from each shard.
	Total int
	// Ineligible are the jobs the caller may not run (its labels fail their constraints),
	// by shard (ByShard): the call passes over their occurrences, but not their alerts.
	Ineligible map[int][]string
	// Unplaced are the jobs that no live node may run, as the caller sees the fleet, each
	// with its constraints as a person reads them: their due occurrences wait apart, recorded
	// as unplaced, until a node that may run them claims (see lua/claim.lua).
	Unplaced map[string]string
}

// ByShard groups jobs by their agenda shard, for Placement.Ineligible.
func ByShard(jobs []string) map[int][]string {
	m := map[int][]string{}
	for _, j := range jobs {
		m[ShardOf(j)] = append(m[ShardOf(j)], j)
	}
	return m
}

// unplaced is the part of Unplaced in shard, as the claim script takes it.
func (p Placement) unplaced(shard int) string {
	var b strings.Builder
	for j, c := range p.Unplaced {
		if ShardOf(j) == shard {
			fmt.Fprintf(&b, "%s\t%s\n", j, strings.NewReplacer("\t", " ", "\n", " ").Replace(c))
		}
	}
	return b.String()
}

// limits is the part of Limits in shard, as the claim script takes it.
func (p Placement) limits(shard int) string {
	var b strings.Builder
	for j, n := range p.Limits {
		if n > 0 && ShardOf(j) == shard {
			fmt.Fprintf(&b, "%s %d ", j, n)
		}
	}
	return b.String()
}

// arg is the placement as the claim script takes it, with rnd for its rounding.
func (p Placement) arg(rnd float64) string {
	if p.Nodes <= 1 {
		return ""
	}
	return fmt.Sprintf("%d %.4f %.4f %d", p.Nodes, p.Free, rnd, max(p.Window.Milliseconds(), 1))
}

// Stuck is an occurrence that a claim could not decide: Key (its lock, or its job's
// history or wait list) holds another type than cronfleet writes there.
type Stuck struct {
	Occurrence string
	Job        string
	Key        string
}

// Decided is an occurrence the claim script did not run, and why.
type Decided struct {
	Occurrence string
	Status     Status
	Reason     string
}

// Claim claims up to max occurrences from each of shards that are due, or become due within
// lead, by Redis' clock. deadline is the caller's estimate of Redis' clock when it will stop
// waiting for the reply: a call executed later claims nothing (see lua/claim.lua); the zero
// time means now plus the call timeout on the caller's clock. The occurrences of the jobs
// in yield are left to other nodes (Expanded.Superseded).
func (q *Queue) Claim(ctx context.Context, shards []int, max int, lead time.Duration, deadline time.Time, yield []string) (Claimed, error) {
	return q.ClaimPlaced(ctx, shards, max, lead, deadline, yield, Placement{})
}

// ClaimPlaced is Claim for a node of a fleet: each shard's call takes at most the caller's
// fair share of what is due there (p; see lua/claim.lua), and Claimed.Shared says where it
// stopped at it.
func (q *Queue) ClaimPlaced(ctx context.Context, shards []int, max int, lead time.Duration, deadline time.Time, yield []string, p Placement) (Claimed, error) {
	if deadline.IsZero() {
		deadline = time.Now().Add(q.cfg.CallTimeout)
	}
	quota, floor, top := q.rankShards(ctx, shards, max, lead, yield, p)
	calls := make([]call, len(shards))
	for i, s := range shards {
		id := q.reqBase + "." + strconv.FormatUint(q.reqSeq.Add(1), 36)
		n := max
		if quota != nil {
			n = quota[s]
		}
		calls[i] = q.claimCall(claimRequest{shard: s, id: id, max: n, lead: lead, deadline: deadline, yield: yield, place: p,
			share: p.arg(rand.Float64()), prios: priorities(p.Priorities, s, floor, top)})
	}
	res, errs, err := q.evalEach(ctx, calls)
	if err != nil {
		return Claimed{}, fmt.Errorf("queue: claim: %w", err)
	}
	out := Claimed{Heads: make(map[int]time.Time, len(shards))}
	for i, r := range res {
		if errs[i] != nil {
			if out.Failed == nil {
				out.Failed = map[int]error{}
			}
			out.Failed[shards[i]] = fmt.Errorf("queue: claim: %w", errs[i])
			continue
		}
		s, ok := r.(string)
		if !ok {
			return Claimed{}, fmt.Errorf("queue: claim: unexpected reply %v", r)
		}
		if err := q.parseClaimReply(s, shards[i], &out); err != nil {
			return Claimed{}, fmt.Errorf("queue: claim: %w", err)
		}
	}
	return out, nil
}

// claimRequest is what one shard's claim script call asks (see ClaimPlaced).
type claimRequest struct {
	shard    int
	id       string // names the request for its reply cache
	max      int
	lead     time.Duration
	deadline time.Time
	yield    []string
	place    Placement
	share    string // place.arg, the fair share's inputs
	prios    string // priorities, for this shard
}

// claimCall is one shard's claim script call.
func (q *Queue) claimCall(r claimRequest) call {
	shard, p := r.shard, r.place
	k := q.keys(shard)
	args := []any{k.lockPrefix(), q.cfg.Lease.Milliseconds(), r.max, (2 * q.cfg.CallTimeout).Milliseconds() + 1000,
		r.deadline.UnixMilli(), r.lead.Milliseconds(), k.waitPrefix(), k.historyPrefix(), q.cfg.HistoryLimit,
		q.cfg.Node, WaitLimit, Policy{}.String(), q.guard.known(shard), q.guardParams(), q.cfg.AheadGrace.Milliseconds(),
		r.share, k.holdersPrefix(), k.cappedPrefix(), p.limits(shard), r.prios,
		k.unplacedPrefix(), p.unplaced(shard), strings.Join(p.Ineligible[shard], " ")}
	for _, j := range jobsIn(r.yield, shard) {
		args = append(args, j)
	}
	return call{script: q.claim,
		keys: []string{k.agenda(), k.fence(), k.attempts(), k.request(r.id), k.paused(),
			k.policy(), k.running(), k.cancel(), k.next(), k.late(), k.epoch(), k.tokens(), k.alerts(), k.share(), k.capped(), k.unplaced(), k.top(), k.fan(), k.calls()},
		args: args, shard: shard}
}

func (q *Queue) parseClaimReply(reply string, shard int, out *Claimed) error {
	lines := strings.Split(reply, "\n")
	if len(lines) < 2 {
		return fmt.Errorf("malformed reply %q", reply)
	}
	nowStr, ep, _ := strings.Cut(lines[0], " ")
	if _, _, err := q.guard.observe(shard, ep); err != nil {
		return err
	}
	now, err := strconv.ParseInt(nowStr, 10, 64)
	if err != nil {
		return fmt.Errorf("malformed time in reply %q", reply)
	}
	if t := time.UnixMicro(now); t.After(out.Now) {
		out.Now = t
	}
	if lines[1] != "" {
		head, err := strconv.ParseFloat(lines[1], 64)
		if err != nil {
			return fmt.Errorf("malformed head in reply %q", reply)
		}
		out.Heads[shard] = time.UnixMilli(int64(head))
	}
	for _, l := range lines[2:] {
		if l == "+share" {
			if out.Shared == nil {
				out.Shared = map[int]bool{}
			}
			out.Shared[shard] = true
			continue
		}
		f := strings.Split(l, "\t")
		if occ, ok := strings.CutPrefix(f[0], "?"); ok && len(f) == 2 {
			job, _ := jobOf(occ)
			out.Stuck = append(out.Stuck, Stuck{Occurrence: occ, Job: job, Key: f[1]})
			// The script met the wrong type itself, so Redis replied no error to count.
			q.cfg.Metrics.RedisError(kindWrongType)
			continue
		}
		if strings.HasPrefix(l, "!") && len(f) == 3 {
			out.Decided = append(out.Decided, Decided{Occurrence: f[1], Status: Status(f[0][1:]), Reason: f[2]})
			continue
		}
		if len(f) != 5 {
			return fmt.Errorf("malformed claim %q", l)
		}
		attempt, err1 := strconv.Atoi(f[1])
		token, err2 := strconv.ParseInt(f[2], 10, 64)
		notBefore, err3 := strconv.ParseFloat(f[3], 64)
		ttl, err4 := strconv.ParseInt(f[4], 10, 64)
		job, ok := jobOf(f[0])
		if err := errors.Join(err1, err2, err3, err4); err != nil || !ok {
			return fmt.Errorf("malformed claim %q", l)
		}
		out.Claims = append(out.Claims, Claim{Occurrence: f[0], Job: job, Shard: shard, Attempt: attempt, Token: token,
			NotBefore: time.UnixMilli(int64(notBefore)), TTL: time.Duration(ttl) * time.Millisecond})
	}
	return nil
}

// Renew extends the leases still held, in one round trip, and reports per lease whether it
// is still this node's, and whether the fleet cancelled its run. It implements
// lease.Renewer.
func (q *Queue) Renew(ctx context.Context, ls []lease.Lease) ([]lease.Verdict, error) {
	idx := map[int][]int{}
	for i, l := range ls {
		idx[l.Shard] = append(idx[l.Shard], i)
	}
	shards := sortedKeys(idx)
	calls := make([]call, len(shards))
	for c, s := range shards {
		k := q.keys(s)
		args := []any{k.lockPrefix(), q.cfg.Lease.Milliseconds(), q.guard.known(s), q.guardParams()}
		var occs []string
		for _, i := range idx[s] {
			args = append(args, ls[i].Occurrence, strconv.FormatInt(ls[i].Token, 10), ls[i].Attempt)
			occs = append(occs, ls[i].Occurrence)
		}
		calls[c] = call{script: q.renew, keys: []string{k.agenda(), k.cancel(), k.epoch(), k.tokens(), k.attempts(), k.running()},
			args: args, shard: s, jobs: jobsOf(occs), occs: occs}
	}
	res, errs, err := q.evalEach(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("queue: renew: %w", err)
	}
	codes, _, _, failed, err := q.scatter(res, errs, shards, idx, len(ls))
	if err != nil {
		return nil, fmt.Errorf("queue: renew: %w", err)
	}
	out := make([]lease.Verdict, len(ls))
	for i, c := range codes {
		switch {
		case failed[i] != nil:
			// Its shard refused the call: nothing is known, the lease keeper fences by time.
			out[i] = lease.Unknown
		case c == 1:
			out[i] = lease.Held
		case c == 2:
			out[i] = lease.Cancelled
		}
	}
	// A shard's error is not returned: the claims of the same shard report it.
	return out, nil
}
