package queue

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// call is one script invocation of a pipelined batch.
type call struct {
	script *redis.Script
	keys   []string
	args   []any
}

// evalAll runs calls in one pipeline: one round trip whatever their number. Scripts run by
// SHA; when Redis lost its script cache (a restart, a failover) the calls it refused are sent
// again once with their source, which also caches them for the next time. An error reply
// comes back as a *ReplyError.
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
	if err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return nil, replyError(err)
	}
	var retry []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
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
			return nil, replyError(err)
		}
	}
	out := make([]any, len(cmds))
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil {
			return nil, replyError(err)
		}
		out[i] = v
	}
	return out, nil
}
