package engine

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// TestOutageLogsOncePerKind: an outage, however many retries it takes, is one error line
// when it starts and one line when it ends; a change of kind (unreachable, then LOADING
// while Redis reloads its data) is worth one more line.
func TestOutageLogsOncePerKind(t *testing.T) {
	var buf bytes.Buffer
	o := &outageLog{log: slog.New(slog.NewTextHandler(&buf, nil))}
	refused := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	// A real error reply, as the queue returns it.
	mr := miniredis.RunT(t)
	mr.SetError("LOADING Redis is loading the dataset in memory")
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	_, loading := queue.New(rdb, queue.Config{}).Time(t.Context())
	if reply := (*queue.ReplyError)(nil); !errors.As(loading, &reply) {
		t.Fatalf("miniredis reply %v (%T) is not a *queue.ReplyError", loading, loading)
	}
	for range 5 {
		o.failed("claim", &net.OpError{Op: "dial", Err: refused})
	}
	for range 5 {
		o.failed("claim", loading)
	}
	o.answered()
	o.answered()
	for range 3 {
		o.failed("renew", loading)
	}
	o.answered()

	var got []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		_, msg, _ := strings.Cut(l, "msg=")
		msg, _, _ = strings.Cut(msg, " op=")
		msg, _, _ = strings.Cut(msg, " outage=")
		got = append(got, msg)
	}
	want := []string{
		`"redis unreachable; retrying with backoff"`,
		`"redis refused the call; retrying with backoff"`,
		`"redis answering again"`,
		`"redis refused the call; retrying with backoff"`,
		`"redis answering again"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log lines:\n%s\nwant:\n%s\n(log:\n%s)", strings.Join(got, "\n"), strings.Join(want, "\n"), buf.String())
	}
}
