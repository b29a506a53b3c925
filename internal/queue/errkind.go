package queue

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Metrics is what the queue reports for monitoring: internal/metrics implements it.
type Metrics interface {
	// RedisError counts one failed Redis call, or one command's error reply, by its kind
	// (ErrorKind).
	RedisError(kind string)
}

// noMetrics is the Metrics of a Queue given none, so that the calls need no nil check.
type noMetrics struct{}

func (noMetrics) RedisError(string) {}

// The kinds ErrorKind returns. They are a closed set, so that a metric labelled by them
// stays small whatever Redis answers: an error reply of a code not listed is "other".
const (
	kindTimeout           = "timeout"
	kindConnectionRefused = "connection_refused"
	kindConnectionReset   = "connection_reset"
	kindWrongType         = "wrongtype"
	kindNoScript          = "noscript"
	kindOOM               = "oom"
	kindNoPerm            = "noperm"
	kindLoading           = "loading"
	kindReadOnly          = "readonly"
	kindBusy              = "busy"
	kindOther             = "other"
)

// ErrorKinds lists every kind ErrorKind may return, for a metric to show each from the
// start, at zero.
func ErrorKinds() []string {
	return []string{kindTimeout, kindConnectionRefused, kindConnectionReset, kindWrongType, kindNoScript,
		kindOOM, kindNoPerm, kindLoading, kindReadOnly, kindBusy, kindOther}
}

// ErrorKind classifies an error of a Redis call for an operator: a failure to reach Redis
// (timeout, connection refused or reset) or Redis' error reply, by its code. It returns ""
// for what is not Redis' trouble: no error, a missing key (redis.Nil), or a call its caller
// cancelled.
func ErrorKind(err error) string {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return ""
	}
	var r *ReplyError
	if errors.As(replyError(err), &r) {
		switch r.Kind {
		case "WRONGTYPE":
			return kindWrongType
		case "NOSCRIPT":
			return kindNoScript
		case "OOM":
			return kindOOM
		case "NOPERM":
			return kindNoPerm
		case "LOADING":
			return kindLoading
		case "READONLY":
			return kindReadOnly
		case "BUSY":
			return kindBusy
		}
		return kindOther
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, redis.ErrPoolTimeout), errors.As(err, &ne) && ne.Timeout():
		return kindTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return kindConnectionRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF):
		// Redis closed the connection under the call: it was killed, or it dropped a client.
		return kindConnectionReset
	}
	return kindOther
}

// callError counts err by kind and returns it as replyError does: the one way a Queue method
// turns the client's error into its own, so that every failure is counted once.
func (q *Queue) callError(err error) error {
	if kind := ErrorKind(err); kind != "" {
		q.cfg.Metrics.RedisError(kind)
	}
	return replyError(err)
}
