package cron

import (
	"testing"
	"time"
)

func TestMaxUnixIsEndOf9999(t *testing.T) {
	want := time.Date(maxYear, time.December, 31, 23, 59, 59, 0, time.UTC)
	if got := time.Unix(maxUnix, 0).UTC(); !got.Equal(want) {
		t.Errorf("maxUnix is %v, want %v", got, want)
	}
}
