package cron_test

import (
	"testing"
	"time"
)

var benchCases = []struct {
	name, spec, zone string
}{
	{"utc", "*/5 * * * *", ""},
	{"fixed", "30 2 * * *", "America/New_York"},
	{"interval", "*/15 * * * *", "Europe/Berlin"},
	{"every", "@every 90s", "Australia/Lord_Howe"},
}

func BenchmarkNext(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			s := mustParse(b, bc.spec, mustLoad(b, bc.zone))
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
	for _, bc := range benchCases {
		t.Run(bc.name, func(t *testing.T) {
			s := mustParse(t, bc.spec, mustLoad(t, bc.zone))
			at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			if n := testing.AllocsPerRun(100, func() { at = s.Next(at) }); n != 0 {
				t.Errorf("Next allocates %v times per call, want 0", n)
			}
		})
	}
}
