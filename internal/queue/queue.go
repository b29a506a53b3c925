package queue

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/lease"
)

var (
	//go:embed lua/expand.lua
	expandSrc string
	//go:embed lua/claim.lua
	claimSrc string
	//go:embed lua/renew.lua
	renewSrc string
	//go:embed lua/complete.lua
	completeSrc string
)

// Config tunes a Queue. Zero fields take the defaults documented on each.
type Config struct {
	// Namespace prefixes every key, so several fleets can share one Redis.
	Namespace string
	// Lease is how long a claim holds an occurrence without renewal.
	Lease time.Duration
	// HistoryLimit is how many run records are kept per job (default 100).
	HistoryLimit int
	// CallTimeout bounds every Redis call; it must stay well below Lease so that a node can
	// notice a dead Redis and stop its handlers before its lease can expire (default:
	// Lease/6, at most 5s).
	CallTimeout time.Duration
}

// Queue is the agenda of one namespace in Redis. It is safe for concurrent use.
type Queue struct {
	rdb      redis.UniversalClient
	cfg      Config
	expand   *redis.Script
	claim    *redis.Script
	renew    *redis.Script
	complete *redis.Script
	reqBase  string
	reqSeq   atomic.Uint64
}

// New returns a Queue over rdb, which may be a plain, Sentinel (failover) or Cluster client.
func New(rdb redis.UniversalClient, cfg Config) *Queue {
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.HistoryLimit <= 0 {
		cfg.HistoryLimit = 100
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = min(cfg.Lease/6, 5*time.Second)
	}
	return &Queue{
		rdb:      rdb,
		cfg:      cfg,
		expand:   redis.NewScript(expandSrc),
		claim:    redis.NewScript(claimSrc),
		renew:    redis.NewScript(renewSrc),
		complete: redis.NewScript(completeSrc),
		// Claim request ids only need to be unique among calls alive at the same time.
		reqBase: strconv.FormatUint(rand.Uint64(), 36),
	}
}

// CallTimeout is the deadline the queue puts on each Redis call.
func (q *Queue) CallTimeout() time.Duration { return q.cfg.CallTimeout }

func (q *Queue) keys(shard int) keys { return shardKeys(q.cfg.Namespace, shard) }

// call is one script invocation of a pipelined batch.
type call struct {
	script *redis.Script
	keys   []string
	args   []any
}

// evalAll runs calls in one pipeline: one round trip whatever their number. Scripts run by
// SHA; when Redis lost its script cache (a restart, a failover) the calls it refused are sent
// again once with their source, which also caches them for the next time.
func (q *Queue) evalAll(ctx context.Context, calls []call) ([]any, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	cmds := make([]*redis.Cmd, len(calls))
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	if err != nil && !isNoScript(err) {
		return nil, err
	}
	var retry []int
	for i, c := range cmds {
		if isNoScript(c.Err()) {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 {
		_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range retry {
				cmds[i] = calls[i].script.Eval(ctx, p, calls[i].keys, calls[i].args...)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]any, len(cmds))
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// Expansion is the next occurrences of one job, as computed by a node from its schedule.
type Expansion struct {
	// Job is the job's name. It picks the shard (ShardOf) and the watermark that decides
	// which of Due are new.
	Job string
	// Due are the due instants, ascending, at millisecond precision. Only those after the
	// job's watermark are added (for a job never expanded before: those not before Redis'
	// now), so any number of nodes may send the same expansion.
	Due []time.Time
	// IDs are the occurrence ids of Due, index for index (cron.OccurrenceID): the name the
	// occurrence keeps on every attempt and node, in its lock, its history and the ids
	// handlers see. Expand refuses an Expansion whose IDs and Due differ in length.
	IDs []string
}

// maxArgsPerCall keeps each expansion script call small, so no single call blocks Redis long.
const maxArgsPerCall = 4096

// Expand adds the occurrences of exps to the agenda, each at most once ever (see
// lua/expand.lua), and returns every job's watermark afterwards: the due time of the newest
// occurrence ever added (absent: none yet).
func (q *Queue) Expand(ctx context.Context, exps []Expansion) (map[string]time.Time, error) {
	byShard := map[int][]Expansion{}
	for _, e := range exps {
		if len(e.Due) != len(e.IDs) {
			return nil, fmt.Errorf("queue: expand %s: %d due times but %d ids", e.Job, len(e.Due), len(e.IDs))
		}
		s := ShardOf(e.Job)
		byShard[s] = append(byShard[s], e)
	}
	var calls []call
	var jobsOf [][]string
	for shard, list := range byShard {
		k := q.keys(shard)
		var args []any
		var jobs []string
		flush := func() {
			if len(jobs) == 0 {
				return
			}
			calls = append(calls, call{q.expand, []string{k.agenda(), k.watermarks()}, append([]any{len(jobs)}, args...)})
			jobsOf = append(jobsOf, jobs)
			args, jobs = nil, nil
		}
		for _, e := range list {
			if len(args) > 0 && len(args)+2+2*len(e.Due) > maxArgsPerCall {
				flush()
			}
			args = append(args, e.Job, len(e.Due))
			for _, d := range e.Due {
				args = append(args, d.UnixMilli())
			}
			for _, id := range e.IDs {
				args = append(args, id)
			}
			jobs = append(jobs, e.Job)
		}
		flush()
	}
	res, err := q.evalAll(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("queue: expand: %w", err)
	}
	wms := make(map[string]time.Time, len(exps))
	for i, r := range res {
		vals, ok := r.([]any)
		if !ok || len(vals) != len(jobsOf[i]) {
			return nil, fmt.Errorf("queue: expand: unexpected reply %v", r)
		}
		for j, v := range vals {
			if ms, err := strconv.ParseInt(fmt.Sprint(v), 10, 64); err == nil {
				wms[jobsOf[i][j]] = time.UnixMilli(ms)
			}
		}
	}
	return wms, nil
}

// Watermarks returns the due time of the newest occurrence ever added for each job that has
// one: where a node must resume expanding after the whole fleet was down.
func (q *Queue) Watermarks(ctx context.Context, jobs []string) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	byShard := map[int][]string{}
	for _, j := range jobs {
		byShard[ShardOf(j)] = append(byShard[ShardOf(j)], j)
	}
	cmds := map[int]*redis.SliceCmd{}
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for s, js := range byShard {
			cmds[s] = p.HMGet(ctx, q.keys(s).watermarks(), js...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: watermarks: %w", err)
	}
	out := map[string]time.Time{}
	for s, c := range cmds {
		for i, v := range c.Val() {
			if str, ok := v.(string); ok {
				if ms, err := strconv.ParseInt(str, 10, 64); err == nil {
					out[byShard[s][i]] = time.UnixMilli(ms)
				}
			}
		}
	}
	return out, nil
}

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
}

// Lease returns the lease this claim holds.
func (c Claim) Lease() lease.Lease {
	return lease.Lease{Occurrence: c.Occurrence, Shard: c.Shard, Token: c.Token}
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
}

// Claim claims up to max occurrences from each of shards that are due, or become due within
// lead, by Redis' clock. deadline is the caller's estimate of Redis' clock when it will stop
// waiting for the reply: a call executed later claims nothing (see lua/claim.lua); the zero
// time means now plus the call timeout on the caller's clock.
func (q *Queue) Claim(ctx context.Context, shards []int, max int, lead time.Duration, deadline time.Time) (Claimed, error) {
	if deadline.IsZero() {
		deadline = time.Now().Add(q.cfg.CallTimeout)
	}
	calls := make([]call, len(shards))
	for i, s := range shards {
		id := q.reqBase + "." + strconv.FormatUint(q.reqSeq.Add(1), 36)
		calls[i] = q.claimCall(s, id, max, lead, deadline)
	}
	res, err := q.evalAll(ctx, calls)
	if err != nil {
		return Claimed{}, fmt.Errorf("queue: claim: %w", err)
	}
	out := Claimed{Heads: make(map[int]time.Time, len(shards))}
	for i, r := range res {
		s, ok := r.(string)
		if !ok {
			return Claimed{}, fmt.Errorf("queue: claim: unexpected reply %v", r)
		}
		if err := parseClaimReply(s, shards[i], &out); err != nil {
			return Claimed{}, fmt.Errorf("queue: claim: %w", err)
		}
	}
	return out, nil
}

// claimCall is one shard's claim script call; id names the request for its reply cache.
func (q *Queue) claimCall(shard int, id string, max int, lead time.Duration, deadline time.Time) call {
	k := q.keys(shard)
	return call{q.claim,
		[]string{k.agenda(), k.fence(), k.attempts(), k.request(id)},
		[]any{k.lockPrefix(), q.cfg.Lease.Milliseconds(), max, (2 * q.cfg.CallTimeout).Milliseconds() + 1000,
			deadline.UnixMilli(), lead.Milliseconds()}}
}

func parseClaimReply(reply string, shard int, out *Claimed) error {
	lines := strings.Split(reply, "\n")
	if len(lines) < 2 {
		return fmt.Errorf("malformed reply %q", reply)
	}
	now, err := strconv.ParseInt(lines[0], 10, 64)
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
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			return fmt.Errorf("malformed claim %q", l)
		}
		attempt, err1 := strconv.Atoi(f[1])
		token, err2 := strconv.ParseInt(f[2], 10, 64)
		notBefore, err3 := strconv.ParseFloat(f[3], 64)
		at := strings.LastIndexByte(f[0], '@')
		if err := errors.Join(err1, err2, err3); err != nil || at < 0 {
			return fmt.Errorf("malformed claim %q", l)
		}
		out.Claims = append(out.Claims, Claim{Occurrence: f[0], Job: f[0][:at], Shard: shard, Attempt: attempt, Token: token,
			NotBefore: time.UnixMilli(int64(notBefore))})
	}
	return nil
}

// Renew extends the leases still held, in one round trip, and reports per lease whether it
// is still this node's. It implements lease.Renewer.
func (q *Queue) Renew(ctx context.Context, ls []lease.Lease) ([]bool, error) {
	idx := map[int][]int{}
	for i, l := range ls {
		idx[l.Shard] = append(idx[l.Shard], i)
	}
	shards := sortedKeys(idx)
	calls := make([]call, len(shards))
	for c, s := range shards {
		k := q.keys(s)
		args := []any{k.lockPrefix(), q.cfg.Lease.Milliseconds()}
		for _, i := range idx[s] {
			args = append(args, ls[i].Occurrence, strconv.FormatInt(ls[i].Token, 10))
		}
		calls[c] = call{q.renew, []string{k.agenda()}, args}
	}
	res, err := q.evalAll(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("queue: renew: %w", err)
	}
	return scatter(res, shards, idx, len(ls))
}

// Status is the outcome of one run, as kept in history.
type Status string

// The statuses a run record can have.
const (
	// StatusSucceeded: the handler returned without error.
	StatusSucceeded Status = "succeeded"
	// StatusFailed: the handler failed and no attempt is left (or the error was permanent).
	StatusFailed Status = "failed"
	// StatusRetrying: the handler failed; the occurrence runs again after its backoff.
	StatusRetrying Status = "retrying"
	// StatusAbandoned: earlier holders lost their lease until no attempt was left.
	StatusAbandoned Status = "abandoned"
	// StatusSkipped: the occurrence no longer belongs to its job's schedule on this node.
	StatusSkipped Status = "skipped"
	// StatusCancelled: the node shut down while the run was going; it runs again elsewhere.
	StatusCancelled Status = "cancelled"
)

// Record is one run in a job's history.
//
// The engine fills it; the queue keeps it as JSON in the job's capped history list without
// interpreting it. Times are UTC. The JSON names are the stored format: renaming one would
// hide that field of every record already kept.
type Record struct {
	// Occurrence is the occurrence id, shared by every attempt of the same run, so the
	// records of its retries can be told apart from the runs of other occurrences.
	Occurrence string `json:"occurrence"`
	// Job is the job's name; the record lives in this job's history.
	Job string `json:"job"`
	// Node names the node that held the claim and wrote the record.
	Node string `json:"node"`
	// Attempt is which claim of the occurrence this was, counting from 1; it includes
	// attempts whose holder died without writing a record.
	Attempt int `json:"attempt"`
	// FencingToken is the claim's fencing token: compare it with the token a handler's side
	// effects recorded to tell which attempt wrote them.
	FencingToken int64 `json:"fencing_token"`
	// ScheduledAt is the occurrence's due time, not when it ran; zero when its id could not
	// be parsed.
	ScheduledAt time.Time `json:"scheduled_at"`
	// StartedAt is when the handler was started, on the recording node's clock. A run that
	// never started (skipped, abandoned) has StartedAt equal to EndedAt: the time it was
	// recorded.
	StartedAt time.Time `json:"started_at"`
	// EndedAt is when the handler returned, on the recording node's clock.
	EndedAt time.Time `json:"ended_at"`
	// Status is the outcome; StatusRetrying and StatusCancelled mean the occurrence runs
	// again, so another record for it follows.
	Status Status `json:"status"`
	// Error says why the run did not succeed: the handler's error, the lost lease, the
	// shutdown, or why the occurrence was skipped or abandoned. Empty on success.
	Error string `json:"error,omitempty"`
	// Message is the handler's one-line summary of the run (its result's Message, e.g. an
	// exit code or an HTTP status line); empty when the handler returned no result.
	Message string `json:"message,omitempty"`
	// Output is the handler's result Output or, when it returned none, the last lines the
	// run streamed: enough to see why it failed without the node's logs.
	Output string `json:"output,omitempty"`
	// Metadata is the handler's result Metadata, such as "exit_code" or "status_code": the
	// values a dashboard or script can test without parsing Output.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Completion finishes (or reschedules) a claimed occurrence.
//
// With neither Retry nor Release the occurrence is done and leaves the agenda for good.
type Completion struct {
	// Claim is the claim being completed. Its token must still be the lock's value (or the
	// lock must have expired with nobody claiming the occurrence since); otherwise the
	// completion is refused, because the occurrence belongs to a later attempt.
	Claim Claim
	// Retry reschedules the occurrence Delay from now instead of finishing it; its next
	// claim counts the next attempt.
	Retry bool
	// Release reschedules it like Retry but gives the attempt back: this node did not run
	// it (it does not know the job, or the job's schedule differs here), or its run was
	// cancelled by the node's own shutdown, which is not the job's failure.
	Release bool
	// Delay is, with Retry or Release, how long after now on Redis' clock the occurrence is
	// due again (at least a millisecond): the retry backoff. It is ignored otherwise.
	Delay time.Duration
	// Record, if not nil, is appended to the job's history.
	Record *Record
}

// markerTTL is how long a completion marker outlives the lock it replaces: long enough for
// any re-sent call of the same completion to arrive.
func (q *Queue) markerTTL() time.Duration { return max(q.cfg.Lease, 4*q.cfg.CallTimeout) }

// Complete applies completions in one round trip and reports for each whether it was
// accepted. A completion is refused (false) when someone else claimed the occurrence since
// the caller did: it was too late, and the occurrence belongs to another attempt now.
func (q *Queue) Complete(ctx context.Context, cs []Completion) ([]bool, error) {
	idx := map[int][]int{}
	for i, c := range cs {
		idx[c.Claim.Shard] = append(idx[c.Claim.Shard], i)
	}
	shards := sortedKeys(idx)
	calls := make([]call, len(shards))
	for n, s := range shards {
		k := q.keys(s)
		args := []any{k.lockPrefix(), k.historyPrefix(), q.cfg.HistoryLimit, q.markerTTL().Milliseconds()}
		for _, i := range idx[s] {
			c := cs[i]
			action := "done"
			switch {
			case c.Release:
				action = "release"
			case c.Retry:
				action = "retry"
			}
			rec := ""
			if c.Record != nil {
				b, err := json.Marshal(c.Record)
				if err != nil {
					return nil, fmt.Errorf("queue: complete %s: %w", c.Claim.Occurrence, err)
				}
				rec = string(b)
			}
			args = append(args, c.Claim.Occurrence, c.Claim.Job, strconv.FormatInt(c.Claim.Token, 10),
				strconv.Itoa(c.Claim.Attempt), action, c.Delay.Milliseconds(), rec)
		}
		calls[n] = call{q.complete, []string{k.agenda(), k.attempts()}, args}
	}
	res, err := q.evalAll(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("queue: complete: %w", err)
	}
	return scatter(res, shards, idx, len(cs))
}

// History returns up to n of job's most recent run records, newest first.
func (q *Queue) History(ctx context.Context, job string, n int) ([]Record, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	raw, err := q.rdb.LRange(ctx, q.keys(ShardOf(job)).historyPrefix()+job, 0, int64(n)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: history %s: %w", job, err)
	}
	out := make([]Record, 0, len(raw))
	for _, r := range raw {
		var rec Record
		if err := json.Unmarshal([]byte(r), &rec); err != nil {
			return nil, fmt.Errorf("queue: history %s: decode record: %w", job, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func sortedKeys(m map[int][]int) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

// scatter maps per-shard 0/1 replies back to the caller's order.
func scatter(res []any, shards []int, idx map[int][]int, n int) ([]bool, error) {
	out := make([]bool, n)
	for c, s := range shards {
		vals, ok := res[c].([]any)
		if !ok || len(vals) != len(idx[s]) {
			return nil, fmt.Errorf("queue: unexpected reply %v", res[c])
		}
		for j, v := range vals {
			n, _ := v.(int64)
			out[idx[s][j]] = n == 1
		}
	}
	return out, nil
}

// Time returns Redis' clock. Nodes use it only to estimate their offset to Redis, to know
// when to wake up; what is due is always decided inside the scripts.
func (q *Queue) Time(ctx context.Context) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	t, err := q.rdb.Time(ctx).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("queue: time: %w", err)
	}
	return t, nil
}

// ErrEviction is returned by CheckEviction when Redis may evict keys: an evicted lock or
// watermark would let an occurrence run twice, so a node refuses to run on such a server.
var ErrEviction = errors.New("queue: redis may evict keys")

// CheckEviction verifies that Redis cannot evict keys: either no memory limit is set or the
// maxmemory-policy is noeviction.
func (q *Queue) CheckEviction(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	cfg, err := q.rdb.ConfigGet(ctx, "maxmemory*").Result()
	if err != nil {
		return fmt.Errorf("queue: check eviction: CONFIG GET maxmemory-policy: %w", err)
	}
	policy, limit := cfg["maxmemory-policy"], cfg["maxmemory"]
	if policy == "" {
		return fmt.Errorf("queue: check eviction: CONFIG GET returned no maxmemory-policy")
	}
	if policy != "noeviction" && limit != "0" {
		return fmt.Errorf("%w: maxmemory is %s and maxmemory-policy is %q; set it to noeviction", ErrEviction, limit, policy)
	}
	return nil
}
