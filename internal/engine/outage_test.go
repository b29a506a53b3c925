package engine

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// TestOutageLogsOncePerKind: an outage, however many retries it takes, is one error line
// when it starts and one line when it ends; a change of kind (unreachable, then LOADING
// while Redis reloads its data) is worth one more line.
func TestOutageLogsOncePerKind(t *testing.T) {
	var buf bytes.Buffer
	o := &outageLog{log: slog.New(slog.NewTextHandler(&buf, nil))}
	refused := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	// The queue turns Redis' error replies into *queue.ReplyError (its own tests check that
	// on real replies), so the engine sees no client error type.
	loading := fmt.Errorf("claim: %w", &queue.ReplyError{Kind: "LOADING"})
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
