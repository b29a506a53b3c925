package cron

import (
	"hash/fnv"
	"testing"
	"time"
)

func TestMaxUnixIsEndOf9999(t *testing.T) {
	want := time.Date(maxYear, time.December, 31, 23, 59, 59, 0, time.UTC)
	if got := time.Unix(maxUnix, 0).UTC(); !got.Equal(want) {
		t.Errorf("maxUnix is %v, want %v", got, want)
	}
}

// The hashes behind H and Jitter are FNV-1a as hash/fnv computes it; the
// package hashes strings itself only to spare the copies.
func TestFNV1aIsHashFNV(t *testing.T) {
	for _, s := range []string{"", "a", "db-backup@2026-03-08T07:00:00.000Z", "ops@team\x00minute\x001", "žluťoučký"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := fnv1a(fnvOffset, s), h.Sum64(); got != want {
			t.Errorf("fnv1a(%q) = %#x, hash/fnv says %#x", s, got, want)
		}
	}
}
