package queue

import (
	"context"
	_ "embed"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lua/lib.lua
	libSrc string
	//go:embed lua/expand.lua
	expandSrc string
	//go:embed lua/claim.lua
	claimSrc string
	//go:embed lua/rank.lua
	rankSrc string
	//go:embed lua/renew.lua
	renewSrc string
	//go:embed lua/complete.lua
	completeSrc string
	//go:embed lua/join.lua
	joinSrc string
	//go:embed lua/trigger.lua
	triggerSrc string
	//go:embed lua/fanout.lua
	fanoutSrc string
)

// Config tunes a Queue. Zero fields take the defaults documented on each.
type Config struct {
	// Namespace prefixes every key, so several fleets can share one Redis.
	Namespace string
	// Lease is how long a claim holds an occurrence without renewal.
	Lease time.Duration
	// HistoryLimit is how many run records are kept per job (default 100).
	HistoryLimit int
	// Node names this node in the history records the claim script writes for occurrences
	// it decided not to run, and to the lost-state guard, which counts each node's calls
	// apart. Nodes of a fleet have distinct names.
	Node string
	// Away is how long a shard may go without any call before what fell due meanwhile counts
	// as missed while no node was claiming (see Catchup). Nodes ask every shard of their
	// jobs at least once a second, so it must stay well above that (default 3s).
	Away time.Duration
	// CallTimeout bounds every Redis call; it must stay well below Lease so that a node can
	// notice a dead Redis and stop its handlers before its lease can expire (default:
	// Lease/6, at most 5s).
	CallTimeout time.Duration
	// AheadGrace is how long past its not-before a claim made ahead of it holds its lease,
	// unless its holder renews it to the full Lease once the run has started (default: a
	// fifth of the lease, the lease keeper's margin, plus a second; at most Lease).
	AheadGrace time.Duration
	// SettleAfter is how long a shard may go without any call before its leases count as
	// suspended: Redis was unreachable (restarting, failing over), so holders could not renew
	// or report, and a lease that expired meanwhile without a later claim still counts as held
	// for a while after (see lua/lib.lua). Nodes call each shard of their jobs every second,
	// so it must stay above that (default 1.2s).
	SettleAfter time.Duration
	// DisableGuard turns the lost-state guard off (see guard.go), for the test that shows
	// what it prevents. Never in production: a Redis that lost state then replays finished
	// runs and forgets planned ones.
	DisableGuard bool
	// OutputLines caps each occurrence's output stream, in entries, all attempts together;
	// the oldest give way, roughly (MAXLEN ~), so a stream may hold a few more (default 1000).
	OutputLines int
	// OutputLineBytes cuts longer output lines (default 1 KiB).
	OutputLineBytes int
	// OutputRetention is how long an occurrence's output stream is kept after an attempt
	// ended, for a reader that arrives late; the run's record keeps its last lines for
	// longer (default 1h).
	OutputRetention time.Duration
	// Metrics counts the Redis errors the queue meets, by kind; nil counts nothing.
	Metrics Metrics
}

// Queue is the agenda of one namespace in Redis. It is safe for concurrent use.
type Queue struct {
	rdb      redis.UniversalClient
	cfg      Config
	expand   *redis.Script
	claim    *redis.Script
	rank     *redis.Script
	renew    *redis.Script
	complete *redis.Script
	trigger  *redis.Script
	join     *redis.Script
	fanout   *redis.Script
	output   *redis.Script
	stats    *redis.Script
	// announceScript is named apart from Announce, the method that runs it.
	announceScript *redis.Script
	reqBase        string
	reqSeq         atomic.Uint64
	guard          *guard
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
	if cfg.Away <= 0 {
		cfg.Away = 3 * time.Second
	}
	if cfg.SettleAfter <= 0 {
		cfg.SettleAfter = 1200 * time.Millisecond
	}
	if cfg.AheadGrace <= 0 {
		cfg.AheadGrace = cfg.Lease/5 + time.Second
	}
	cfg.AheadGrace = min(cfg.AheadGrace, cfg.Lease)
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = min(cfg.Lease/6, 5*time.Second)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	lib := scriptConstants() + libSrc
	return &Queue{
		rdb:            rdb,
		cfg:            cfg,
		expand:         redis.NewScript(lib + expandSrc),
		claim:          redis.NewScript(lib + claimSrc),
		rank:           redis.NewScript(lib + rankSrc),
		renew:          redis.NewScript(lib + renewSrc),
		complete:       redis.NewScript(lib + completeSrc),
		trigger:        redis.NewScript(triggerSrc),
		join:           redis.NewScript(lib + joinSrc),
		fanout:         redis.NewScript(lib + fanoutSrc),
		output:         redis.NewScript(outputSrc),
		stats:          redis.NewScript(scriptConstants() + statsSrc),
		announceScript: redis.NewScript(announceSrc),
		// Claim request ids only need to be unique among calls alive at the same time.
		reqBase: strconv.FormatUint(rand.Uint64(), 36),
		guard:   newGuard(cfg.DisableGuard, cfg.Lease, cfg.Node),
	}
}

// CallTimeout is the deadline the queue puts on each Redis call.
func (q *Queue) CallTimeout() time.Duration { return q.cfg.CallTimeout }

func (q *Queue) keys(shard int) keys { return shardKeys(q.cfg.Namespace, shard) }

// guardParams are the lost-state guard's parameters, as the scripts take them.
func (q *Queue) guardParams() string {
	return strconv.FormatInt(q.cfg.Lease.Milliseconds(), 10) + " " + strconv.FormatInt(q.cfg.SettleAfter.Milliseconds(), 10) +
		" " + strconv.FormatInt(q.cfg.Away.Milliseconds(), 10)
}

// Time returns Redis' clock. Nodes use it only to estimate their offset to Redis, to know
// when to wake up; what is due is always decided inside the scripts.
func (q *Queue) Time(ctx context.Context) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	t, err := q.rdb.Time(ctx).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("queue: time: %w", q.callError(err))
	}
	return t, nil
}

// scriptConstants declares, in Lua, the Go constants that scripts share with the queue, so
// that each has one source.
func scriptConstants() string {
	return fmt.Sprintf("local DEFAULT_PRIORITY, MAX_PRIORITY = %d, %d\n", DefaultPriority, MaxPriority)
}
