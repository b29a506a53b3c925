package metrics

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// BenchmarkRecorded is what a node pays per run record: the counter by job and status, and
// the two histograms, over many jobs.
func BenchmarkRecorded(b *testing.B) {
	m := New(prometheus.NewRegistry())
	const jobs = 10000
	recs := make([]queue.Record, jobs)
	due := time.Now()
	for i := range recs {
		recs[i] = queue.Record{Job: "job-" + strconv.Itoa(i), Status: queue.StatusSucceeded, Attempt: 1,
			ScheduledAt: due, StartedAt: due.Add(time.Millisecond), EndedAt: due.Add(time.Second)}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Recorded(&recs[i%jobs])
			i++
		}
	})
}
