package main

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// redisStats counts what this node asks of Redis: round trips (a pipeline is one) and
// commands. The node logs them when it stops; the benchmark divides them by occurrences.
type redisStats struct {
	roundTrips atomic.Int64
	commands   atomic.Int64
}

func (s *redisStats) DialHook(next redis.DialHook) redis.DialHook { return next }

func (s *redisStats) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		s.roundTrips.Add(1)
		s.commands.Add(1)
		return next(ctx, cmd)
	}
}

func (s *redisStats) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		s.roundTrips.Add(1)
		s.commands.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*redisStats)(nil)
