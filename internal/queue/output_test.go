package queue

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/redistest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// scheduled adds an occurrence of job, due in an hour, to the agenda and returns its id: a
// reader of its output must wait for it rather than take it for finished.
func scheduled(t *testing.T, b *backend, q *Queue, job string) string {
	t.Helper()
	due := b.now(t).Add(time.Hour)
	mustExpand(t, q, expansion(job, due))
	return occID(job, due.Truncate(time.Millisecond))
}

func mustAppend(t *testing.T, q *Queue, o Output) {
	t.Helper()
	if err := q.AppendOutput(t.Context(), o); err != nil {
		t.Fatalf("AppendOutput: %v", err)
	}
}

func mustRead(t *testing.T, q *Queue, occ, after string, block time.Duration) OutputChunk {
	t.Helper()
	c, err := q.ReadOutput(t.Context(), occ, after, block)
	if err != nil {
		t.Fatalf("ReadOutput: %v", err)
	}
	return c
}

// texts are a chunk's entries without their times, which Redis' clock decides.
func texts(c OutputChunk) []OutputLine {
	out := make([]OutputLine, len(c.Lines))
	for i, l := range c.Lines {
		l.At = time.Time{}
		out[i] = l
	}
	return out
}

// TestOutputAppendRead follows one occurrence's stream through two attempts: a reader that
// continues from its cursor sees each line once, in order, the first attempt's end without
// stopping, and stops at the last attempt's end.
func TestOutputAppendRead(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		occ := scheduled(t, b, q, "talk")
		before := b.now(t)

		c := mustRead(t, q, occ, "", 0)
		if len(c.Lines) != 0 || c.End {
			t.Fatalf("before any output: %+v, want no lines and no end", c)
		}
		mustAppend(t, q, Output{Occurrence: occ, Attempt: 1, Batch: 1, Lines: []string{"one", "two"}})
		// A call that go-redis re-sends after a lost reply adds nothing.
		mustAppend(t, q, Output{Occurrence: occ, Attempt: 1, Batch: 1, Lines: []string{"one", "two"}})
		c = mustRead(t, q, occ, c.Cursor, 0)
		want := []OutputLine{{Attempt: 1, Text: "one"}, {Attempt: 1, Text: "two"}}
		if diff := cmp.Diff(want, texts(c)); diff != "" || c.End {
			t.Fatalf("first batch (-want +got):\n%s\nend %v", diff, c.End)
		}
		for _, l := range c.Lines {
			if l.At.Before(before.Add(-time.Millisecond)) || l.At.After(b.now(t)) {
				t.Errorf("line %q at %v, outside Redis' clock %v..now", l.Text, l.At, before)
			}
		}

		mustAppend(t, q, Output{Occurrence: occ, Attempt: 1, Batch: 2, Lines: []string{"three"}, End: StatusRetrying})
		c = mustRead(t, q, occ, c.Cursor, 0)
		want = []OutputLine{{Attempt: 1, Text: "three"}, {Attempt: 1, End: StatusRetrying}}
		if diff := cmp.Diff(want, texts(c)); diff != "" || c.End {
			t.Fatalf("end of the first attempt (-want +got):\n%s\nend %v (want false: a retry follows)", diff, c.End)
		}

		mustAppend(t, q, Output{Occurrence: occ, Attempt: 2, Batch: 1, Lines: []string{"again"}, End: StatusSucceeded, Final: true})
		c = mustRead(t, q, occ, c.Cursor, time.Minute) // the end is there: no wait
		want = []OutputLine{{Attempt: 2, Text: "again"}, {Attempt: 2, End: StatusSucceeded, Final: true}}
		if diff := cmp.Diff(want, texts(c)); diff != "" || !c.End {
			t.Fatalf("last attempt (-want +got):\n%s\nend %v, want true", diff, c.End)
		}

		all := mustRead(t, q, occ, "", 0)
		if len(all.Lines) != 6 || all.Cursor != c.Cursor || !all.End {
			t.Errorf("whole stream: %d entries, cursor %s (want 6, %s), end %v", len(all.Lines), all.Cursor, c.Cursor, all.End)
		}
	})
}

// TestOutputEndFromTheAgenda: a run that wrote nothing leaves no stream, so the reader learns
// that it ended from the agenda, and an occurrence waiting for its job's overlap slot is not
// over.
func TestOutputEndFromTheAgenda(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		occ := scheduled(t, b, q, "quiet")
		if c := mustRead(t, q, occ, "", 0); c.End {
			t.Errorf("scheduled occurrence: end, want none")
		}

		waiting := occID("quiet", b.now(t).Add(2*time.Hour))
		if err := b.rdb.ZAdd(t.Context(), q.keys(ShardOf("quiet")).waitPrefix()+"quiet", redis.Z{Member: waiting}).Err(); err != nil {
			t.Fatal(err)
		}
		if c := mustRead(t, q, waiting, "", 0); c.End {
			t.Errorf("occurrence waiting for its overlap slot: end, want none")
		}

		// Finished without output (or never scheduled): no wait, whatever the block.
		gone := occID("quiet", b.now(t).Add(-time.Hour))
		start := time.Now()
		c := mustRead(t, q, gone, "", time.Minute)
		if !c.End || len(c.Lines) != 0 || time.Since(start) > 10*time.Second {
			t.Errorf("finished occurrence: %+v after %v, want an end at once", c, time.Since(start))
		}

		// An attempt that ended with a retry, then a silent last attempt: the stream has no
		// final end, the agenda tells.
		mustAppend(t, q, Output{Occurrence: gone, Attempt: 1, Batch: 1, Lines: []string{"x"}, End: StatusRetrying})
		if c := mustRead(t, q, gone, "", 0); !c.End || len(c.Lines) != 2 {
			t.Errorf("finished occurrence with a retried attempt: %+v, want 2 entries and the end", c)
		}
	})
}

// TestOutputBlocks: a reader of a running occurrence waits for its next line, and gets it
// as soon as it is written.
func TestOutputBlocks(t *testing.T) {
	t.Parallel()
	b := newRedis(t)
	q := b.queue(Config{})
	occ := scheduled(t, b, q, "slow")

	// Nothing comes: the wait ends after block, without an end.
	start := time.Now()
	if c := mustRead(t, q, occ, "", 100*time.Millisecond); len(c.Lines) != 0 || c.End {
		t.Errorf("read without output: %+v, want nothing", c)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("read returned after %v, want it to wait 100ms", waited)
	}

	type result struct {
		c   OutputChunk
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := q.ReadOutput(t.Context(), occ, "", time.Minute)
		got <- result{c, err}
	}()
	testwait.For(t, 10*time.Second, "the reader to block", func() bool {
		info, err := b.rdb.Info(t.Context(), "clients").Result()
		return err == nil && strings.Contains(info, "blocked_clients:1\r\n")
	})
	mustAppend(t, q, Output{Occurrence: occ, Attempt: 1, Batch: 1, Lines: []string{"now"}})
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("ReadOutput: %v", r.err)
		}
		if diff := cmp.Diff([]OutputLine{{Attempt: 1, Text: "now"}}, texts(r.c)); diff != "" || r.c.End {
			t.Errorf("blocked read (-want +got):\n%s\nend %v", diff, r.c.End)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the blocked reader did not return with the line")
	}
}

// TestOutputBounds: lines are cut, the stream is capped (roughly, on a real server: MAXLEN ~
// trims whole nodes of entries), and it expires: a day after its last line while no end was
// written, OutputRetention after an end.
func TestOutputBounds(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		const capLines, lineBytes = 50, 8
		q := b.queue(Config{OutputLines: capLines, OutputLineBytes: lineBytes, OutputRetention: time.Minute})
		occ := scheduled(t, b, q, "loud")
		key := q.keys(ShardOf("loud")).output(occ)

		mustAppend(t, q, Output{Occurrence: occ, Attempt: 1, Batch: 1, Lines: []string{"0123456789", "ünïcödé"}})
		c := mustRead(t, q, occ, "", 0)
		want := []OutputLine{{Attempt: 1, Text: "01234567…"}, {Attempt: 1, Text: "ünïcö…"}}
		if diff := cmp.Diff(want, texts(c)); diff != "" {
			t.Errorf("long lines (-want +got):\n%s", diff)
		}
		if ttl := b.rdb.PTTL(t.Context(), key).Val(); ttl < outputLiveTTL-time.Minute || ttl > outputLiveTTL {
			t.Errorf("TTL while running = %v, want about %v", ttl, outputLiveTTL)
		}

		for batch := 2; batch < 12; batch++ {
			lines := make([]string, 50)
			for i := range lines {
				lines[i] = fmt.Sprint(batch*100 + i)
			}
			mustAppend(t, q, Output{Occurrence: occ, Attempt: 1, Batch: batch, Lines: lines})
		}
		n := b.rdb.XLen(t.Context(), key).Val()
		// A real server trims whole nodes of stream-node-max-entries (100) entries.
		if n < capLines || n > capLines+100 {
			t.Errorf("stream holds %d entries after 502, want %d (+ up to 100)", n, capLines)
		}
		if first := mustRead(t, q, occ, "", 0).Lines[0].Text; first == "01234567…" {
			t.Errorf("oldest line still there after 502: the oldest must give way")
		}
		newest := b.rdb.XRevRangeN(t.Context(), key, "+", "-", 1).Val()
		if len(newest) != 1 || newest[0].Values["l"] != "1149" {
			t.Errorf("newest entry %v, want line 1149", newest)
		}

		mustAppend(t, q, Output{Occurrence: occ, Attempt: 1, Batch: 12, End: StatusSucceeded, Final: true})
		if ttl := b.rdb.PTTL(t.Context(), key).Val(); ttl < 30*time.Second || ttl > time.Minute {
			t.Errorf("TTL after the end = %v, want about a minute", ttl)
		}
		if b.mr != nil { // a real server's expiry: TestOutputExpiresOnARealServer
			b.clockTo(t, b.now(t).Add(time.Minute+time.Millisecond))
			if b.rdb.Exists(t.Context(), key).Val() != 0 {
				t.Errorf("stream still there a minute after its end")
			}
		}
	})
}

// TestOutputExpiresOnARealServer: a real server drops the stream by itself once its
// retention after the end is over.
func TestOutputExpiresOnARealServer(t *testing.T) {
	t.Parallel()
	b := newRedis(t)
	q := b.queue(Config{OutputRetention: 200 * time.Millisecond})
	occ := scheduled(t, b, q, "brief")
	mustAppend(t, q, Output{Occurrence: occ, Attempt: 1, Batch: 1, Lines: []string{"bye"}, End: StatusFailed, Final: true})
	key := q.keys(ShardOf("brief")).output(occ)
	testwait.For(t, 10*time.Second, "the stream to expire", func() bool {
		return b.rdb.Exists(t.Context(), key).Val() == 0
	})
}

// TestOutputKeySlot: an occurrence's output stream lives in its shard's Cluster slot, with the
// agenda, lock and history the engine writes alongside it, whatever the job's name.
func TestOutputKeySlot(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	for _, job := range []string{"backup", "a@b", "{x}", "with:colon", "ünï", "}{"} {
		for _, occ := range []string{occID(job, at), occID(job, at) + "~k3x9"} {
			k := shardKeys("prod", ShardOf(job))
			want := redistest.KeySlot(k.agenda())
			for _, key := range []string{k.output(occ), k.lockPrefix() + occ, k.historyPrefix() + job} {
				if got := redistest.KeySlot(key); got != want {
					t.Errorf("slot of %q = %d, want the agenda's %d", key, got, want)
				}
			}
			if got := k.typeOf(k.output(occ)); got != "stream" {
				t.Errorf("typeOf(%q) = %q, want stream", k.output(occ), got)
			}
		}
	}
}

// TestOutputOnCluster appends and reads through a Cluster client: the read's pipeline (agenda,
// wait list, stream) goes to one node, because its keys share a slot.
func TestOutputOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	rdb := c.Client(t)
	q := New(rdb, Config{Namespace: namespace(t), CallTimeout: 5 * time.Second})
	ctx := t.Context()
	for _, job := range []string{"c-1", "c-2", "c-3", "c-4"} {
		occ := occID(job, time.Now().Add(time.Hour))
		if err := q.AppendOutput(ctx, Output{Occurrence: occ, Attempt: 1, Batch: 1, Lines: []string{job}, End: StatusSucceeded, Final: true}); err != nil {
			t.Fatalf("AppendOutput %s: %v", job, err)
		}
		got, err := q.ReadOutput(ctx, occ, "", 0)
		if err != nil {
			t.Fatalf("ReadOutput %s: %v", job, err)
		}
		want := []OutputLine{{Attempt: 1, Text: job}, {Attempt: 1, End: StatusSucceeded, Final: true}}
		if diff := cmp.Diff(want, texts(got)); diff != "" || !got.End {
			t.Errorf("%s on a cluster (-want +got):\n%s\nend %v", job, diff, got.End)
		}
	}
}

// TestOutputRefusesOtherKeys: a foreign key where the stream belongs is an error, not a crash.
func TestOutputRefusesOtherKeys(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		occ := scheduled(t, b, q, "clash")
		if err := b.rdb.Set(t.Context(), q.keys(ShardOf("clash")).output(occ), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := q.AppendOutput(t.Context(), Output{Occurrence: occ, Attempt: 1, Batch: 1, Lines: []string{"x"}}); err == nil {
			t.Errorf("AppendOutput over a string key: no error")
		}
		// miniredis reads a string key as an empty stream.
		if _, err := q.ReadOutput(t.Context(), occ, "", 0); err == nil && b.mr == nil {
			t.Errorf("ReadOutput of a string key: no error")
		}
		if _, err := q.ReadOutput(t.Context(), "no-at-sign", "", 0); err == nil {
			t.Errorf("ReadOutput of a malformed id: no error")
		}
	})
}
