package queue

import (
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ReplyError is an error reply from Redis: the server was reached and refused the call. A
// failure to reach Redis (a refused connection, a timeout) is not one: then whether the
// call ran is unknown. Callers tell the two apart with errors.As; the client's error stays
// wrapped, so errors.Is and errors.As find it too.
type ReplyError struct {
	// Kind is the reply's first word, Redis' error code: LOADING while it loads its data
	// after a restart, READONLY from a replica after a failover, OOM, NOSCRIPT, or ERR for a
	// plain refusal such as an unknown command.
	Kind string
	err  error
}

// Error returns the client's message for the reply: Redis' own words (or, for a ReplyError
// made by hand, as a test's fake agenda does, its Kind).
func (e *ReplyError) Error() string {
	if e.err == nil {
		return e.Kind
	}
	return e.err.Error()
}

// Unwrap returns the client's error for the reply.
func (e *ReplyError) Unwrap() error { return e.err }

// replyError wraps err in a *ReplyError if it is an error reply from Redis, and returns it
// unchanged otherwise. go-redis marks its own conditions ("redis: nil", "redis: transaction
// failed") as Redis errors too; they are not replies, so they are left as they are.
func replyError(err error) error {
	var rerr redis.Error
	if !errors.As(err, &rerr) || strings.HasPrefix(rerr.Error(), "redis: ") {
		return err
	}
	kind, _, _ := strings.Cut(rerr.Error(), " ")
	return &ReplyError{Kind: kind, err: err}
}
