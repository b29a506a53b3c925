package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// AuditEntry is one action taken on the fleet (a pause, a trigger, …), as the audit stream
// keeps it: who did what to which job, when and why.
type AuditEntry struct {
	// At is when Redis recorded the action, by its clock; set by AuditLog, ignored by Audit.
	At time.Time `json:"at"`
	// By names who acted: user@host for the command line, the token's name (and the
	// client's address) for the HTTP API.
	By string `json:"by"`
	// Via is where the action came from: "cli" or "http".
	Via string `json:"via"`
	// Action is what was done: "pause", "resume", "trigger" or "backfill".
	Action string `json:"action"`
	// Job is the job acted on.
	Job string `json:"job"`
	// Note is the operator's reason, for a pause.
	Note string `json:"note,omitempty"`
	// Detail says what the action did: the occurrence a trigger added, the range and count of
	// a backfill, whether a resumed job was paused.
	Detail string `json:"detail,omitempty"`
}

// AuditLimit is about how many actions the audit stream keeps: it is trimmed as it grows,
// like history, so it never grows without bound.
const AuditLimit = 10000

// Audit appends e to the fleet's audit stream, stamped with Redis' clock.
func (q *Queue) Audit(ctx context.Context, e AuditEntry) error {
	e.At = time.Time{}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("queue: audit %s %s: %w", e.Action, e.Job, err)
	}
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	err = q.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: namespaceKeys(q.cfg.Namespace).audit(), MaxLen: AuditLimit, Approx: true, Values: []any{"e", b},
	}).Err()
	if err != nil {
		return fmt.Errorf("queue: audit %s %s: %w", e.Action, e.Job, replyError(err))
	}
	return nil
}

// AuditLog returns up to n of the most recent actions, newest first.
func (q *Queue) AuditLog(ctx context.Context, n int) ([]AuditEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	msgs, err := q.rdb.XRevRangeN(ctx, namespaceKeys(q.cfg.Namespace).audit(), "+", "-", int64(n)).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: audit log: %w", replyError(err))
	}
	out := make([]AuditEntry, 0, len(msgs))
	for _, m := range msgs {
		e, err := decodeAudit(m.ID, m.Values["e"])
		if err != nil {
			return nil, fmt.Errorf("queue: audit entry %s: %w", m.ID, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// decodeAudit reads an entry of the audit stream: its id (Redis' clock in ms, then a
// sequence) and its field "e" (JSON).
func decodeAudit(id string, raw any) (AuditEntry, error) {
	var e AuditEntry
	s, ok := raw.(string)
	if !ok {
		return e, fmt.Errorf("field e is %T, not a string", raw)
	}
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return e, err
	}
	at, err := streamIDTime(id)
	if err != nil {
		return e, err
	}
	e.At = at
	return e, nil
}
