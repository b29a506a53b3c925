package cron_test

import (
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
)

var benchCases = []struct {
	name, spec, zone string
	o                cron.Options // without the zone
}{
	{"utc", "*/5 * * * *", "", cron.Options{}},
	{"fixed", "30 2 * * *", "America/New_York", cron.Options{}},
	{"fixed_skip_both", "30 2 * * *", "America/New_York", cron.Options{Gap: cron.GapSkip, Repeat: cron.RepeatBoth}},
	{"per_second_once_last", "* * 1 * * *", "America/New_York", cron.Options{Repeat: cron.RepeatOnceLast}},
	{"hashed", "H H * * *", "Europe/Berlin", cron.Options{Seed: "db-backup"}},
	{"interval", "*/15 * * * *", "Europe/Berlin", cron.Options{}},
	{"every", "@every 90s", "Australia/Lord_Howe", cron.Options{}},
}

func parseBenchCase(tb testing.TB, i int) cron.Schedule {
	tb.Helper()
	o := benchCases[i].o
	o.Location = mustLoad(tb, benchCases[i].zone)
	s, err := cron.Parse(benchCases[i].spec, o)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func BenchmarkNext(b *testing.B) {
	for i, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			s := parseBenchCase(b, i)
			t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			b.ReportAllocs()
			for b.Loop() {
				t = s.Next(t)
			}
		})
	}
}

// Next is on the hot path for every job; it must not allocate.
func TestNextDoesNotAllocate(t *testing.T) {
	for i, bc := range benchCases {
		t.Run(bc.name, func(t *testing.T) {
			s := parseBenchCase(t, i)
			at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			if n := testing.AllocsPerRun(100, func() { at = s.Next(at) }); n != 0 {
				t.Errorf("Next allocates %v times per call, want 0", n)
			}
		})
	}
}

// BenchmarkParseOccurrenceID is what reading an occurrence's id costs a node, once per run.
func BenchmarkParseOccurrenceID(b *testing.B) {
	id := cron.OccurrenceID("bench-1110", time.Date(2026, 12, 6, 5, 2, 46, 0, time.UTC))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := cron.ParseOccurrenceID(id); err != nil {
			b.Fatal(err)
		}
	}
}
