package queue

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// excludedRecord is the skipped record the engine sends for an occurrence that a calendar
// excludes.
func excludedRecord(job string, due time.Time) Record {
	due = due.Truncate(time.Millisecond).UTC()
	return Record{Occurrence: occID(job, due), Job: job, Node: "node-a", ScheduledAt: due, StartedAt: due, EndedAt: due,
		Status: StatusSkipped, Error: `excluded by calendar "holidays" (` + due.Format("2006-01-02") + `)`}
}

// TestExcludedRecordedOnce: an occurrence that a calendar excludes is never added to the
// agenda, so nobody claims it; its skipped record is written once however many nodes send
// it, also after a new definition replans the job; and it does not count toward max_runs.
func TestExcludedRecordedOnce(t *testing.T) {
	contract(t, func(t *testing.T, b *backend) {
		step := b.lease / 3
		now := b.now(t)
		const job = "payroll"
		shard := ShardOf(job)
		var dues []time.Time
		for i := range 6 {
			dues = append(dues, now.Add(step+time.Duration(i)*time.Millisecond).Truncate(time.Millisecond))
		}
		// dues[1] and dues[2] are excluded; the cap of two runs is reached by 0 and 3.
		exp := expansion(job, dues[0], dues[3])
		exp.Excluded = []Record{excludedRecord(job, dues[1]), excludedRecord(job, dues[2])}
		exp.MaxRuns = 2
		exp.Definition, exp.Loaded = "def-1", now
		nodes := []*Queue{b.queue(Config{}), b.queue(Config{}), b.queue(Config{})}
		var wg sync.WaitGroup
		for i, q := range nodes {
			wg.Go(func() {
				if _, err := q.Expand(t.Context(), []Expansion{exp}); err != nil {
					t.Errorf("node %d: Expand: %v", i, err)
				}
			})
		}
		wg.Wait()
		if diff := cmp.Diff(map[string]time.Time{job: dues[3]}, mustExpand(t, nodes[0], exp)); diff != "" {
			t.Errorf("watermark (-want +got):\n%s", diff)
		}

		// A newer definition replans the job: the watermark goes back to now, and the same
		// occurrences are sent again; the excluded ones are not recorded twice.
		again := exp
		again.Definition, again.Loaded = "def-2", now.Add(time.Millisecond)
		mustExpand(t, nodes[1], again)
		// Past the cap nothing more is added, and an excluded occurrence is not recorded.
		more := expansion(job, dues[0], dues[3], dues[5])
		more.Excluded = []Record{excludedRecord(job, dues[1]), excludedRecord(job, dues[2]), excludedRecord(job, dues[4])}
		more.MaxRuns = 2
		more.Definition, more.Loaded = again.Definition, again.Loaded
		mustExpand(t, nodes[2], more)

		hist := b.history(t, nodes[0], job)
		var got []string
		for _, r := range hist {
			got = append(got, r.Occurrence+" "+string(r.Status)+" "+r.Error)
		}
		want := []string{
			occID(job, dues[2]) + ` skipped excluded by calendar "holidays" (` + dues[2].UTC().Format("2006-01-02") + `)`,
			occID(job, dues[1]) + ` skipped excluded by calendar "holidays" (` + dues[1].UTC().Format("2006-01-02") + `)`,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(exp.Excluded[1], hist[0]); diff != "" {
			t.Errorf("record (-want +got):\n%s", diff)
		}

		// Only the occurrences that run are claimed.
		b.clockTo(t, dues[5].Add(time.Millisecond))
		var claimed []string
		for _, c := range b.mustClaim(t, nodes[0], shard, 100).Claims {
			claimed = append(claimed, c.Occurrence)
		}
		if diff := cmp.Diff([]string{occID(job, dues[0]), occID(job, dues[3])}, claimed); diff != "" {
			t.Errorf("claims (-want +got):\n%s", diff)
		}
	})
}
