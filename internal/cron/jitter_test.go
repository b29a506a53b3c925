package cron_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/cron"
)

func TestJitter(t *testing.T) {
	tests := []struct {
		id   string
		max  time.Duration
		want time.Duration
	}{
		{"db-backup@2026-03-08T07:00:00.000Z", 0, 0},
		{"db-backup@2026-03-08T07:00:00.000Z", -time.Minute, 0},
		{"db-backup@2026-03-08T07:00:00.000Z", time.Millisecond - 1, 0},
		{"db-backup@2026-03-08T07:00:00.000Z", time.Millisecond, 0},
		// Pinned: a change here moves the start of every jittered job.
		{"db-backup@2026-03-08T07:00:00.000Z", 2 * time.Minute, 97508 * time.Millisecond},
		{"db-backup@2026-03-09T07:00:00.000Z", 2 * time.Minute, 58827 * time.Millisecond},
		{"report@2026-03-08T07:00:00.000Z", time.Hour, 851261 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := cron.Jitter(tt.id, tt.max); got != tt.want {
			t.Errorf("Jitter(%q, %v) = %v, want %v", tt.id, tt.max, got, tt.want)
		}
	}

	// Over the occurrences of a minutely job, the delays stay in range, in
	// whole milliseconds, and spread over it.
	const max = 10 * time.Second
	var buckets [10]int
	s := mustParse(t, "* * * * *", nil)
	due := mustTime(t, "2026-01-01T00:00:00Z")
	const n = 10000
	for range n {
		due = s.Next(due)
		id := cron.OccurrenceID("db-backup", due)
		d := cron.Jitter(id, max)
		if d < 0 || d >= max || d%time.Millisecond != 0 {
			t.Fatalf("Jitter(%q, %v) = %v", id, max, d)
		}
		if again := cron.Jitter(id, max); again != d {
			t.Fatalf("Jitter(%q) = %v, then %v", id, d, again)
		}
		buckets[d/(max/10)]++
	}
	for i, c := range buckets {
		if c < n/10*8/10 || c > n/10*12/10 {
			t.Errorf("bucket %d holds %d of %d delays: %v", i, c, n, buckets)
		}
	}
	// A partial last millisecond still starts below max.
	seen := map[time.Duration]bool{}
	for i := range 100 {
		seen[cron.Jitter(cron.OccurrenceID("j", due.Add(time.Duration(i)*time.Minute)), 1500*time.Microsecond)] = true
	}
	if diff := cmp.Diff(map[time.Duration]bool{0: true, time.Millisecond: true}, seen); diff != "" {
		t.Errorf("delays below 1.5ms (-want +got):\n%s", diff)
	}
}
