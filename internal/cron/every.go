package cron

import (
	"fmt"
	"time"
)

// everySchedule is due at every whole multiple of period since the Unix epoch.
type everySchedule struct {
	period int64 // seconds, >= 1
	loc    *time.Location
}

func parseEvery(spec, d string, loc *time.Location) (Schedule, error) {
	period, err := time.ParseDuration(d)
	if err != nil {
		return nil, fmt.Errorf("cron: parse %q: %w", spec, err)
	}
	if period < time.Second {
		return nil, fmt.Errorf("cron: parse %q: @every period %v is shorter than 1s", spec, period)
	}
	if period%time.Second != 0 {
		return nil, fmt.Errorf("cron: parse %q: @every period %v is not a whole number of seconds", spec, period)
	}
	return everySchedule{period: int64(period / time.Second), loc: loc}, nil
}

// Next returns the first multiple of the period since the Unix epoch that is
// strictly after t.
func (e everySchedule) Next(t time.Time) time.Time {
	if t.Before(time.Time{}) {
		t = time.Time{}
	}
	if t.Unix() >= maxUnix {
		return time.Time{}
	}
	// t.Unix() rounds down (nanoseconds are never negative), so the next
	// multiple of period above it is also strictly above t.
	sec := t.Unix()
	q := sec / e.period
	if sec%e.period < 0 {
		q-- // floor division for instants before the epoch
	}
	n := (q + 1) * e.period
	if n > maxUnix {
		return time.Time{}
	}
	return time.Unix(n, 0).In(e.loc)
}
