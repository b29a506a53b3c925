package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrEviction is returned by CheckEviction when Redis may evict keys: an evicted lock or
// watermark would let an occurrence run twice, so a node refuses to run on such a server.
var ErrEviction = errors.New("queue: redis may evict keys")

// CheckEviction verifies that Redis cannot evict keys: either no memory limit is set or the
// maxmemory-policy is noeviction. On a Cluster every master is asked, since each holds some
// of the shards.
func (q *Queue) CheckEviction(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	if c, ok := q.rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return checkEviction(ctx, m, m.Options().Addr)
		})
	}
	return checkEviction(ctx, q.rdb, "")
}

func checkEviction(ctx context.Context, c redis.Cmdable, addr string) error {
	where := ""
	if addr != "" {
		where = " on " + addr
	}
	cfg, err := c.ConfigGet(ctx, "maxmemory*").Result()
	if err != nil {
		return fmt.Errorf("queue: check eviction: CONFIG GET maxmemory-policy%s: %w", where, replyError(err))
	}
	policy, limit := cfg["maxmemory-policy"], cfg["maxmemory"]
	if policy == "" {
		return fmt.Errorf("queue: check eviction: CONFIG GET returned no maxmemory-policy%s", where)
	}
	if policy != "noeviction" && limit != "0" {
		return fmt.Errorf("%w%s: maxmemory is %s and maxmemory-policy is %q; set it to noeviction", ErrEviction, where, limit, policy)
	}
	return nil
}
