package engine

import (
	"context"
	"fmt"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// Alerts (cron.AlertID) are occurrences of their job, added to the agenda by the Redis
// script that records their event (internal/queue), and claimed, leased, fenced, retried
// and recorded like any other: that is what makes each run once whichever nodes live. The
// engine's part is small: an alert runs its job's alert handler, under the alert's fixed
// retry policy and timeout (config.AlertRetry, config.AlertTimeout), with the event in
// sdk.Run.Alert, and a run that fails for good sends its failure alert's id with the
// completion that records it.

// HistoryReader reads a job's run records, newest first: an alert's handler is told the
// status and error its event recorded.
type HistoryReader interface {
	History(ctx context.Context, job string, n int) ([]queue.Record, error)
}

// alertHistory bounds the records searched for an alert's event; the event is recorded
// just before its alert is added, so it is among the newest unless the job is very busy.
const alertHistory = 50

// alertJob is job as an alert of kind runs it: its alert's handler, retry policy and
// timeout, and no alert of its own, so that an alert's failure never raises another. It
// says why when the job no longer alerts on kind (its definition changed since the event).
func alertJob(job *config.Job, kind cron.AlertKind) (*config.Job, string) {
	if !job.Alert.Has(kind) {
		return nil, fmt.Sprintf("the job no longer alerts on %s", kind)
	}
	j := *job
	j.Handler, j.Retry, j.Timeout, j.Alert = job.Alert.Handler, job.Alert.Retry, job.Alert.Timeout, nil
	return &j, ""
}

// alertEvent is the event the alert occ reports, for its handler: with the status and
// error of the record its event wrote, when one can be read (a late occurrence has none).
func (e *Engine) alertEvent(ctx context.Context, occ string) *sdk.Alert {
	watched, kind, ok := cron.ParseAlert(occ)
	if !ok {
		return nil
	}
	job, due, _ := cron.ParseOccurrenceID(watched) // an alert id parses, or it is not claimed
	a := &sdk.Alert{Kind: string(kind), Job: job, Occurrence: watched, ScheduledAt: due.UTC()}
	if kind == cron.AlertLate {
		return a
	}
	recs, err := e.agenda.History(ctx, job, alertHistory)
	if err != nil {
		// The handler still runs, without the event's detail: a missing alert is worse.
		e.log.Warn("reading the event of an alert", "occurrence", occ, "err", err)
		return a
	}
	for _, r := range recs {
		if r.Occurrence == watched && (r.Status == queue.StatusFailed || r.Status == queue.StatusAbandoned || r.Status == queue.StatusMissed) {
			a.Status, a.Error = string(r.Status), r.Error
			break
		}
	}
	return a
}

// failureAlert is the id of the failure alert that completing a with how adds: when the
// run failed for good and its job alerts on failure. An alert's job has no alert.
// A part's failure raises none: the end of its last part raises its parent's.
func failureAlert(a *attempt, how queue.Completion) string {
	if a.job == nil || how.Retry || how.Release || !a.job.Alert.Has(cron.AlertFailure) || cron.IsPart(a.claim.Occurrence) {
		return ""
	}
	if s := a.rec.Status; s != queue.StatusFailed && s != queue.StatusAbandoned {
		return ""
	}
	return cron.AlertID(a.claim.Occurrence, cron.AlertFailure)
}

// alertsOf is what the scripts need of job's alert block.
func alertsOf(job *config.Job) queue.Alerts {
	a := queue.Alerts{Failure: job.Alert.Has(cron.AlertFailure), Missed: job.Alert.Has(cron.AlertMissed)}
	if job.Alert.Has(cron.AlertLate) {
		a.LateAfter = job.Alert.LateAfter
	}
	return a
}
