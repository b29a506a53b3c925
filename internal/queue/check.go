package queue

import (
	"context"
	"errors"
	"fmt"
)

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
		return fmt.Errorf("queue: check eviction: CONFIG GET maxmemory-policy: %w", replyError(err))
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
