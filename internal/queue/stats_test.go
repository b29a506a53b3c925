package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

// TestStats: the agenda's size, its backlog and the age of its oldest due entry, summed over
// the shards and read by Redis' clock, and the nodes, in one call.
func TestStats(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		st, err := q.Stats(t.Context(), nil)
		if err != nil {
			t.Fatalf("Stats of an empty namespace: %v", err)
		}
		if st.Agenda != 0 || st.Due != 0 || st.OldestDue != 0 || len(st.Nodes) != 0 || st.Now.IsZero() {
			t.Errorf("Stats of an empty namespace = %+v, want zeros and Redis' clock", st)
		}

		// Two jobs in different shards fall due, a third much later.
		jobs := []string{"first", "second", "later"}
		if ShardOf(jobs[0]) == ShardOf(jobs[1]) {
			t.Fatal("the test needs jobs in two shards")
		}
		now := b.now(t)
		due := []time.Time{now.Add(b.lease / 10), now.Add(b.lease / 5), now.Add(time.Hour)}
		for i, j := range jobs {
			mustExpand(t, q, expansion(j, due[i]))
		}
		b.clockTo(t, due[1].Add(time.Millisecond))
		st, err = q.Stats(t.Context(), nil)
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if st.Agenda != 3 || st.Due != 2 {
			t.Errorf("Stats = %+v, want 3 in the agenda, 2 due", st)
		}
		if want := st.Now.Sub(due[0]); st.OldestDue != want {
			t.Errorf("OldestDue = %v, want %v: since the first job's due time, by Redis' clock", st.OldestDue, want)
		}

		// A claimed occurrence is held, not backlog; the next due one is now the oldest.
		b.mustClaim(t, q, ShardOf(jobs[0]), 10)
		if err := q.Announce(t.Context(), Node{Name: "n1", JobSetHash: "h"}); err != nil {
			t.Fatal(err)
		}
		st, err = q.Stats(t.Context(), nil)
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if st.Agenda != 3 || st.Due != 1 || st.OldestDue != st.Now.Sub(due[1]) {
			t.Errorf("Stats after a claim = %+v, want 3 in the agenda, 1 due for %v", st, st.Now.Sub(due[1]))
		}
		if len(st.Nodes) != 1 || st.Nodes[0].Name != "n1" || st.Nodes[0].JobSetHash != "h" || st.Nodes[0].Age < 0 || st.Nodes[0].Age > NodeTTL {
			t.Errorf("Stats nodes = %+v, want n1, seen just now", st.Nodes)
		}
	})
}

// kinds is a Metrics that remembers what it was told.
type kinds struct {
	mu sync.Mutex
	n  map[string]int
}

func (k *kinds) RedisError(kind string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n == nil {
		k.n = map[string]int{}
	}
	k.n[kind]++
}

func (k *kinds) counts() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.n)
}

// TestErrorKind: Redis' error replies by code, and failures to reach it by cause, in a
// closed set of kinds; what is not Redis' trouble is no kind.
func TestErrorKind(t *testing.T) {
	t.Parallel()
	b := newMiniredis(t)
	// go-redis retries some replies (LOADING, READONLY) itself: ask once.
	rdb := redis.NewClient(&redis.Options{Addr: b.mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	for code, want := range map[string]string{
		"WRONGTYPE Operation against a key holding the wrong kind of value": kindWrongType,
		"NOSCRIPT No matching script":                                       kindNoScript,
		"OOM command not allowed when used memory > 'maxmemory'.":           kindOOM,
		"NOPERM this user has no permissions":                               kindNoPerm,
		"LOADING Redis is loading the dataset in memory":                    kindLoading,
		"READONLY You can't write against a read only replica.":             kindReadOnly,
		"BUSY Redis is busy running a script.":                              kindBusy,
		"ERR unknown command":                                               kindOther,
		"CLUSTERDOWN The cluster is down":                                   kindOther,
	} {
		b.mr.SetError(code)
		err := rdb.Get(t.Context(), "k").Err()
		if got := ErrorKind(fmt.Errorf("queue: get: %w", err)); got != want {
			t.Errorf("ErrorKind(%q) = %q, want %q", err, got, want)
		}
		// What the engine sees of the reply: a *ReplyError of its code, no client type.
		code, _, _ := strings.Cut(code, " ")
		if r := (*ReplyError)(nil); !errors.As(replyError(err), &r) || r.Kind != code {
			t.Errorf("replyError(%q) = %v, want a *ReplyError of kind %s", err, replyError(err), code)
		}
	}
	b.mr.SetError("")

	opErr := func(errno error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: errno}}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{redis.Nil, ""},
		{context.Canceled, ""},
		{fmt.Errorf("queue: claim: %w", context.DeadlineExceeded), kindTimeout},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, kindTimeout},
		{redis.ErrPoolTimeout, kindTimeout},
		{opErr(syscall.ECONNREFUSED), kindConnectionRefused},
		{opErr(syscall.ECONNRESET), kindConnectionReset},
		{opErr(syscall.EPIPE), kindConnectionReset},
		{io.EOF, kindConnectionReset},
		{errors.New("something else"), kindOther},
	} {
		if got := ErrorKind(tc.err); got != tc.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	for _, k := range ErrorKinds() {
		if k == "" {
			t.Error("ErrorKinds lists an empty kind")
		}
	}
}

// TestRedisErrorsCounted: the queue counts what goes wrong in its calls once each, including
// what it recovers from by itself (NOSCRIPT after Redis lost its script cache).
func TestRedisErrorsCounted(t *testing.T) {
	t.Parallel()
	t.Run("reply", func(t *testing.T) {
		t.Parallel()
		b := newMiniredis(t)
		m := &kinds{}
		q := b.queue(Config{Metrics: m})
		b.mr.SetError("OOM command not allowed when used memory > 'maxmemory'.")
		if _, err := q.Time(t.Context()); err == nil {
			t.Fatal("Time succeeded with every command refused")
		}
		if _, err := q.Claim(t.Context(), []int{0, 1, 2}, 10, 0, time.Time{}, nil); err == nil {
			t.Fatal("Claim succeeded with every command refused")
		}
		b.mr.SetError("")
		if diff := cmp.Diff(map[string]int{kindOOM: 2}, m.counts()); diff != "" {
			t.Errorf("errors counted (-want +got):\n%s", diff)
		}
	})
	t.Run("noscript", func(t *testing.T) {
		t.Parallel()
		b := newRedis(t)
		m := &kinds{}
		q := b.queue(Config{Metrics: m})
		if _, err := q.Claim(t.Context(), []int{0, 1}, 10, 0, time.Time{}, nil); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]int{kindNoScript: 2}, m.counts()); diff != "" {
			t.Errorf("errors counted for a first claim of two shards (-want +got):\n%s", diff)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close() // nothing listens there now: connections are refused
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = rdb.Close() })
		m := &kinds{}
		q := New(rdb, Config{Namespace: namespace(t), Metrics: m})
		if _, err := q.Stats(t.Context(), nil); err == nil {
			t.Fatal("Stats succeeded with nothing listening")
		}
		if diff := cmp.Diff(map[string]int{kindConnectionRefused: 1}, m.counts()); diff != "" {
			t.Errorf("errors counted (-want +got):\n%s", diff)
		}
	})
}
