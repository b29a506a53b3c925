package cron

import "strings"

// AlertKind names the event an alert occurrence reports.
type AlertKind string

// The events a job may alert on.
const (
	// AlertFailure: a run failed for good (no attempts left, a permanent error, or every
	// attempt lost its lease).
	AlertFailure AlertKind = "failure"
	// AlertMissed: an occurrence fell due while no node was claiming, and its job's
	// catch-up policy did not run it.
	AlertMissed AlertKind = "missed"
	// AlertLate: an occurrence had not started a while (the job's late_after) past the
	// instant it was due.
	AlertLate AlertKind = "late"
)

// AlertKinds are the kinds, in the order they are documented.
func AlertKinds() []AlertKind { return []AlertKind{AlertFailure, AlertMissed, AlertLate} }

// alertMark separates the watched occurrence's id from the kind in an alert's id. A
// trigger's nonce is [0-9a-z]+, so the dash keeps "~alert-…" apart from every nonce.
const alertMark = "~alert-"

// AlertID names the alert of kind about the occurrence watched (an id made by
// OccurrenceID or TriggeredID), as "WATCHED~alert-KIND". An alert is an occurrence of the
// watched one's own job, so it lives in the same agenda shard and the scripts that record
// the event can add it in the same atomic step; being derived from the event, the id is the
// same on every node, which makes adding it idempotent (ZADD NX) and the alert run once.
func AlertID(watched string, kind AlertKind) string {
	return watched + alertMark + string(kind)
}

// ParseAlert splits an alert's id (AlertID) into the id of the occurrence it is about and
// its kind. ok is false for an id that names no alert of a known kind.
func ParseAlert(id string) (watched string, kind AlertKind, ok bool) {
	i := strings.LastIndex(id, alertMark)
	if i < 0 || strings.IndexByte(id[i:], '@') >= 0 {
		return "", "", false
	}
	kind = AlertKind(id[i+len(alertMark):])
	switch kind {
	case AlertFailure, AlertMissed, AlertLate:
		return id[:i], kind, true
	}
	return "", "", false
}

// IsAlert reports whether id names an alert (AlertID) rather than a run of its job.
func IsAlert(id string) bool {
	_, _, ok := ParseAlert(id)
	return ok
}
