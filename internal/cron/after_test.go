package cron_test

import (
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
)

func TestDependentID(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sched := cron.OccurrenceID("extract", at)
	trig := cron.TriggeredID("extract", at, "k3x")
	for _, tc := range []struct {
		job, upstream, want string
	}{
		{"load", sched, "load@2026-01-02T03:04:05.000Z~after"},
		{"load", trig, "load@2026-01-02T03:04:05.000Z~k3x~after"},
		// Down a chain, the id still names the first instant: fan-in over a chain and its
		// root meets at one occurrence.
		{"report", "load@2026-01-02T03:04:05.000Z~after", "report@2026-01-02T03:04:05.000Z~after"},
		{"a@b", "x@y@2026-01-02T03:04:05.000Z", "a@b@2026-01-02T03:04:05.000Z~after"},
	} {
		got := cron.DependentID(tc.job, tc.upstream)
		if got != tc.want {
			t.Errorf("DependentID(%q, %q) = %q, want %q", tc.job, tc.upstream, got, tc.want)
		}
		if !cron.IsDependent(got) || cron.IsAlert(got) {
			t.Errorf("IsDependent(%q) = %v, IsAlert = %v", got, cron.IsDependent(got), cron.IsAlert(got))
		}
		if !cron.IsTriggered(got) {
			// The scripts treat it like an occurrence added by hand: in no schedule.
			t.Errorf("IsTriggered(%q) = false", got)
		}
		job, due, err := cron.ParseOccurrenceID(got)
		if err != nil || job != tc.job || !due.Equal(at) {
			t.Errorf("ParseOccurrenceID(%q) = %q, %v, %v", got, job, due, err)
		}
		alert := cron.AlertID(got, cron.AlertFailure)
		if w, _, ok := cron.ParseAlert(alert); !ok || w != got {
			t.Errorf("ParseAlert(%q) = %q, %v", alert, w, ok)
		}
		if job, _, err := cron.ParseOccurrenceID(alert); err != nil || job != tc.job {
			t.Errorf("ParseOccurrenceID(%q) = %q, %v", alert, job, err)
		}
	}
	for _, id := range []string{sched, trig, cron.AlertID(sched, cron.AlertLate), "x~after@2026-01-02T03:04:05.000Z"} {
		if cron.IsDependent(id) {
			t.Errorf("IsDependent(%q) = true", id)
		}
	}
	if _, _, err := cron.ParseOccurrenceID("j@2026-01-02T3:04:05.000Z~after"); err == nil {
		t.Error("ParseOccurrenceID of a malformed dependent id: no error")
	}
}
