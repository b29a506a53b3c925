package fleet

import (
	"context"
	"slices"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// Run is a run record with the two figures a reader computes first, for a run whose
// handler ran: what `runner history -json` prints and GET /v1/jobs/{name}/runs serves.
type Run struct {
	queue.Record
	// LatenessMS is how long after its due time the handler started.
	LatenessMS *float64 `json:"lateness_ms,omitempty"`
	// DurationMS is how long the handler ran.
	DurationMS *float64 `json:"duration_ms,omitempty"`
	// Alert is, for the run of an alert, its event: "failure", "missed" or "late".
	Alert string `json:"alert,omitempty"`
	// Watched is, for the run of an alert, the occurrence it is about.
	Watched string `json:"watched,omitempty"`
	// Parent is, for the run of a part of a broadcast or sharded occurrence, that
	// occurrence; Part is the part's index (from 0) and Parts their count.
	Parent string `json:"parent,omitempty"`
	Part   *int   `json:"part,omitempty"`
	Parts  int    `json:"parts,omitempty"`
}

// Ran reports whether the record's handler ran: skipped, missed, abandoned and unplaced
// occurrences never started (an unplaced one has not yet), and their records carry the
// time they were recorded instead.
func Ran(r queue.Record) bool {
	switch r.Status {
	case queue.StatusSkipped, queue.StatusAbandoned, queue.StatusMissed, queue.StatusUnplaced:
		return false
	}
	return !r.ScheduledAt.IsZero()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func runOf(r queue.Record) Run {
	out := Run{Record: r}
	if watched, kind, ok := cron.ParseAlert(r.Occurrence); ok {
		out.Alert, out.Watched = string(kind), watched
	}
	if parent, i, n, ok := cron.ParsePart(r.Occurrence); ok {
		out.Parent, out.Part, out.Parts = parent, &i, n
	}
	if Ran(r) {
		late, dur := ms(r.StartedAt.Sub(r.ScheduledAt)), ms(r.EndedAt.Sub(r.StartedAt))
		out.LatenessMS, out.DurationMS = &late, &dur
	}
	return out
}

// MaxHistory bounds the records one call returns; history keeps at most about as many.
const MaxHistory = 1000

// History returns up to n of job's most recent runs, newest due first. A job no longer in
// the job files keeps its history, so the job need not be known.
func (f *Fleet) History(ctx context.Context, job string, n int) ([]Run, error) {
	if job == "" {
		return nil, inputErr("no job named")
	}
	if n < 1 || n > MaxHistory {
		return nil, inputErr("n = %d: want 1 to %d runs", n, MaxHistory)
	}
	recs, err := f.store.History(ctx, job, n)
	if err != nil {
		return nil, err
	}
	// History keeps records in the order they were written; an occurrence skipped at its
	// due time is written before the run it overlapped ends. Readers scan by due time.
	slices.SortStableFunc(recs, func(a, b queue.Record) int { return b.ScheduledAt.Compare(a.ScheduledAt) })
	out := make([]Run, len(recs))
	for i, r := range recs {
		out[i] = runOf(r)
	}
	return out, nil
}

// Occurrence is one occurrence and every record of it (one per attempt that ended):
// GET /v1/runs/{occurrence}.
type Occurrence struct {
	// ID is the occurrence id.
	ID string `json:"occurrence"`
	// Job is its job.
	Job string `json:"job"`
	// ScheduledAt is its due time.
	ScheduledAt time.Time `json:"scheduled_at"`
	// Runs are its records, latest attempt first; empty while its first attempt runs or
	// before it fell due.
	Runs []Run `json:"runs"`
}

// Occurrence returns the records of the occurrence id, found in its job's history.
func (f *Fleet) Occurrence(ctx context.Context, id string) (*Occurrence, error) {
	job, due, err := cron.ParseOccurrenceID(id)
	if err != nil {
		return nil, inputErr("%q is not an occurrence id: %v", id, err)
	}
	recs, err := f.store.History(ctx, job, MaxHistory)
	if err != nil {
		return nil, err
	}
	o := &Occurrence{ID: id, Job: job, ScheduledAt: due.UTC(), Runs: []Run{}}
	for _, r := range recs {
		if r.Occurrence == id {
			o.Runs = append(o.Runs, runOf(r))
		}
	}
	return o, nil
}
