package engine

import (
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// TestAlertJob: an alert runs its job's alert handler under the alert's policy, and a run
// sends its failure alert only when it failed for good, never from an alert.
func TestAlertJob(t *testing.T) {
	job := &config.Job{Name: "j", Handler: config.Handler{Plugin: "exec"}, Retry: config.Retry{Attempts: 1}, Timeout: time.Hour,
		Alert: &config.Alert{On: []cron.AlertKind{cron.AlertFailure}, Handler: config.Handler{Plugin: "http"},
			Retry: config.AlertRetry(), Timeout: config.AlertTimeout}}
	aj, why := alertJob(job, cron.AlertFailure)
	if why != "" || aj.Handler.Plugin != "http" || aj.Retry != config.AlertRetry() || aj.Timeout != config.AlertTimeout || aj.Alert != nil {
		t.Errorf("alertJob = %+v, %q", aj, why)
	}
	if job.Handler.Plugin != "exec" {
		t.Error("alertJob changed the job")
	}
	if _, why := alertJob(job, cron.AlertLate); why == "" {
		t.Error("a job that does not alert on late ran a late alert")
	}

	occ := cron.OccurrenceID("j", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, tt := range []struct {
		job    *config.Job
		status queue.Status
		how    queue.Completion
		want   string
	}{
		{job, queue.StatusFailed, queue.Completion{}, cron.AlertID(occ, cron.AlertFailure)},
		{job, queue.StatusAbandoned, queue.Completion{}, cron.AlertID(occ, cron.AlertFailure)},
		{job, queue.StatusRetrying, queue.Completion{Retry: true}, ""},
		{job, queue.StatusCancelled, queue.Completion{Release: true}, ""},
		{job, queue.StatusSucceeded, queue.Completion{}, ""},
		{aj, queue.StatusFailed, queue.Completion{}, ""},
		{nil, queue.StatusSkipped, queue.Completion{}, ""},
	} {
		a := &attempt{claim: queue.Claim{Occurrence: occ}, job: tt.job, rec: &queue.Record{Status: tt.status}}
		if got := failureAlert(a, tt.how); got != tt.want {
			t.Errorf("failureAlert(%s, %+v) = %q, want %q", tt.status, tt.how, got, tt.want)
		}
	}
}
