package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// call is one script invocation of a pipelined batch, on one agenda shard (or on the fleet's
// keys: shard -1). jobs and occs name what the call is about, for its error.
type call struct {
	script *redis.Script
	keys   []string
	args   []any
	shard  int
	jobs   []string
	occs   []string
}

// ShardError is a call refused by one shard: a key of the wrong type, an error in a script.
// The other shards' calls of the batch were answered, and their replies used; only the
// shard's jobs wait, and retry with backoff.
type ShardError struct {
	Shard int
	// Key names the key at fault, when it could be found (a key holding the wrong type).
	Key string
	// Jobs are the jobs of the call.
	Jobs []string
	// Err is Redis' reply, a *ReplyError.
	Err error
}

func (e *ShardError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "shard %d", e.Shard)
	if e.Key != "" {
		fmt.Fprintf(&b, ", key %s", e.Key)
	}
	if len(e.Jobs) > 0 {
		const most = 5
		js := e.Jobs[:min(len(e.Jobs), most)]
		fmt.Fprintf(&b, " (jobs %s", strings.Join(js, ", "))
		if len(e.Jobs) > most {
			fmt.Fprintf(&b, " and %d more", len(e.Jobs)-most)
		}
		b.WriteString(")")
	}
	return b.String() + ": " + e.Err.Error()
}

// Unwrap returns the reply.
func (e *ShardError) Unwrap() error { return e.Err }

// evalAll runs calls in one pipeline and fails if any call failed (see evalEach): for
// callers whose calls stand or fall together.
func (q *Queue) evalAll(ctx context.Context, calls []call) ([]any, error) {
	res, errs, err := q.evalEach(ctx, calls)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return res, nil
}

// evalEach runs calls in one pipeline: one round trip whatever their number. Scripts run by
// SHA; when Redis lost its script cache (a restart, a failover) the calls it refused are sent
// again once with their source, which also caches them for the next time. err is set when
// Redis could not be reached, or refused for a reason of its own state (then nothing is
// known, or nothing ran); otherwise errs[i], if not nil, is the *ShardError of a call that
// failed on its own keys or script, and res[i] the reply of each other.
func (q *Queue) evalEach(ctx context.Context, calls []call) (res []any, errs []error, err error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	cmds := make([]*redis.Cmd, len(calls))
	_, err = q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	if err != nil && !isReply(err) {
		return nil, nil, q.callError(err)
	}
	var retry []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			q.cfg.Metrics.RedisError(kindNoScript)
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
		if err != nil && !isReply(err) {
			return nil, nil, q.callError(err)
		}
	}
	res = make([]any, len(cmds))
	errs = make([]error, len(cmds))
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil {
			var r *ReplyError
			if !errors.As(replyError(err), &r) || !shardFault(r.Kind) {
				return nil, nil, q.callError(err)
			}
			q.cfg.Metrics.RedisError(ErrorKind(r))
			errs[i] = q.shardError(ctx, calls[i], r)
			continue
		}
		res[i] = v
	}
	return res, errs, nil
}

// shardFault says whether an error reply of kind is the fault of the call's own keys or
// script (a key of the wrong type, an error raised running the script), which the other
// shards do not share; the others (LOADING, READONLY, OOM, BUSY, NOPERM, CLUSTERDOWN, …) are
// Redis' state, and fail the whole batch as an outage.
func shardFault(kind string) bool { return kind == "WRONGTYPE" || kind == "ERR" }

// isReply says whether err is Redis' reply to the command, as opposed to a failure to reach
// Redis, after which nothing is known of it.
func isReply(err error) bool {
	var r *ReplyError
	return errors.As(replyError(err), &r)
}

// shardError names the key at fault in a call that failed on its shard: the first key the
// call touches whose type is not the one cronfleet gives it, if any.
func (q *Queue) shardError(ctx context.Context, c call, err error) error {
	se := &ShardError{Shard: c.shard, Jobs: c.jobs, Err: err}
	if c.shard >= 0 {
		se.Key = q.wrongType(ctx, c)
	}
	return se
}

// wrongType returns the first key of c, or derived from its jobs and occurrences, whose type
// is not the one cronfleet gives it ("" if none is found).
func (q *Queue) wrongType(ctx context.Context, c call) string {
	k := q.keys(c.shard)
	cands := append([]string(nil), c.keys...)
	for _, j := range c.jobs {
		cands = append(cands, k.historyPrefix()+j, k.waitPrefix()+j)
	}
	for _, o := range c.occs {
		cands = append(cands, k.lockPrefix()+o)
	}
	types := make([]*redis.StatusCmd, len(cands))
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range cands {
			types[i] = p.Type(ctx, key)
		}
		return nil
	})
	if err != nil {
		return ""
	}
	for i, key := range cands {
		if got := types[i].Val(); got != "none" && got != k.typeOf(key) {
			return fmt.Sprintf("%s (a %s, not a %s)", key, got, k.typeOf(key))
		}
	}
	return ""
}

// historyFault is the fault of a job whose history key holds another type: the scripts
// leave its item unapplied rather than lose the record.
func historyFault(shard int, key string, jobs []string) error {
	return &ShardError{Shard: shard, Key: key + " (not a list)", Jobs: jobs,
		Err: &ReplyError{Kind: "WRONGTYPE", err: errors.New("WRONGTYPE the job's history key holds another type")}}
}
