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
)

// TestOutageLogsOncePerKind: an outage, however many retries it takes, is one error line
// when it starts and one line when it ends; a change of kind (unreachable, then LOADING
// while Redis reloads its data) is worth one more line.
func TestOutageLogsOncePerKind(t *testing.T) {
	var buf bytes.Buffer
	o := &outage{log: slog.New(slog.NewTextHandler(&buf, nil))}
	refused := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	// A real error reply, as go-redis returns it.
	mr := miniredis.RunT(t)
	mr.SetError("LOADING Redis is loading the dataset in memory")
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	loading := rdb.Ping(t.Context()).Err()
	if _, ok := loading.(redis.Error); !ok {
		t.Fatalf("miniredis reply %v (%T) is not a redis.Error", loading, loading)
	}
	for range 5 {
		o.fail("claim", &net.OpError{Op: "dial", Err: refused})
	}
	for range 5 {
		o.fail("claim", loading)
	}
	o.ok()
	o.ok()
	for range 3 {
		o.fail("renew", loading)
	}
	o.ok()

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
