package cron

import (
	"testing"
	"time"
)

func TestPartID(t *testing.T) {
	due := time.Date(2026, 3, 1, 2, 30, 0, 0, time.UTC)
	for _, parent := range []string{
		OccurrenceID("sync", due),
		TriggeredID("sync", due, "k3x9"),
		DependentID("sync", OccurrenceID("up", due)),
		OccurrenceID("a@b", due),
	} {
		id := PartID(parent, 3, 5)
		p, i, n, ok := ParsePart(id)
		if !ok || p != parent || i != 3 || n != 5 {
			t.Errorf("ParsePart(%q) = %q, %d, %d, %v; want %q, 3, 5, true", id, p, i, n, ok, parent)
		}
		job, at, err := ParseOccurrenceID(id)
		if wantJob, wantAt, _ := ParseOccurrenceID(parent); err != nil || job != wantJob || !at.Equal(wantAt) {
			t.Errorf("ParseOccurrenceID(%q) = %q, %v, %v; want its parent's %q, %v", id, job, at, err, wantJob, wantAt)
		}
		if IsAlert(id) || IsDependent(id) {
			t.Errorf("%q taken for an alert or a dependent", id)
		}
	}
	for _, id := range []string{
		"sync@2026-03-01T02:30:00.000Z",
		"sync@2026-03-01T02:30:00.000Z~part-5-of-5",
		"sync@2026-03-01T02:30:00.000Z~part-01-of-5",
		"sync@2026-03-01T02:30:00.000Z~part--1-of-5",
		"sync@2026-03-01T02:30:00.000Z~part-1-of-",
		"sync~part-1-of-2",
		"sync@2026-03-01T02:30:00.000Z~part-1-of-2@x",
	} {
		if IsPart(id) {
			t.Errorf("IsPart(%q) = true", id)
		}
	}
	if _, _, err := ParseOccurrenceID("sync@2026-03-01T2:30:00.000Z~part-1-of-2"); err == nil {
		t.Error("a part of a malformed parent parsed")
	}
}
