package queue

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestAuditKeepsTheNewestActions: actions come back newest first, stamped with Redis'
// clock, and the stream is trimmed rather than growing without bound.
func TestAuditKeepsTheNewestActions(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		q := b.queue(Config{})
		before := b.now(t).Truncate(time.Millisecond)
		want := []AuditEntry{
			{By: "ops@host", Via: "cli", Action: "pause", Job: "a", Note: "migration"},
			{By: "alice (127.0.0.1)", Via: "http", Action: "trigger", Job: "b", Detail: "b@manual-x"},
		}
		for _, e := range want {
			e.At = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) // ignored: Redis stamps it
			if err := q.Audit(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}
		got, err := q.AuditLog(t.Context(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]AuditEntry{want[1], want[0]}, got, cmpopts.IgnoreFields(AuditEntry{}, "At")); diff != "" {
			t.Errorf("AuditLog (-want +got):\n%s", diff)
		}
		for _, e := range got {
			if e.At.Before(before) || e.At.After(b.now(t)) {
				t.Errorf("entry at %v, want Redis' time of the call, after %v", e.At, before)
			}
		}
		if got, err := q.AuditLog(t.Context(), 1); err != nil || len(got) != 1 || got[0].Action != "trigger" {
			t.Errorf("AuditLog(1) = %+v, %v; want the trigger alone", got, err)
		}
	})
}

func TestAuditStreamIsCapped(t *testing.T) {
	b := newRedis(t)
	q := b.queue(Config{})
	for i := range AuditLimit + 500 {
		if err := q.Audit(t.Context(), AuditEntry{By: "x", Via: "cli", Action: "trigger", Job: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.rdb.XLen(t.Context(), namespaceKeys(q.cfg.Namespace).audit()).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Trimming is approximate (whole stream nodes), so allow one node's worth over.
	if n < AuditLimit || n > AuditLimit+100 {
		t.Errorf("audit stream holds %d entries after %d actions, want about %d", n, AuditLimit+500, AuditLimit)
	}
}
