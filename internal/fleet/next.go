package fleet

import (
	"slices"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
)

// Fire is one coming occurrence of a job, as `runner next -json` prints it.
type Fire struct {
	// At is when the occurrence starts (its schedule's instant plus its jitter), UTC.
	At time.Time `json:"at"`
	// Scheduled is the schedule's instant, before jitter, UTC.
	Scheduled time.Time `json:"scheduled"`
	// Local is At on the wall clock of the job's zone.
	Local string `json:"local"`
	// Zone is the zone's abbreviation at Scheduled (CET, CEST, …).
	Zone string `json:"zone"`
	// JitterMS is how long the jitter delays the occurrence.
	JitterMS int64 `json:"jitter_ms"`
	// Occurrence is the occurrence's id.
	Occurrence string `json:"occurrence"`
	// DST says how a daylight-saving change touches the scheduled instant: "" (it does not),
	// "at_change" (it is the instant of a change: a wall time in a spring-forward gap that
	// the job shifts comes here), "repeated_first" or "repeated_second" (its wall time occurs
	// twice that day, and this is its first or second instant).
	DST string `json:"dst,omitempty"`
	// Excluded names the calendar that excludes the occurrence (the first of the job's
	// exclude list that does), and ExcludedDate the day it falls on in that calendar's zone:
	// the occurrence does not run and is recorded as skipped. Empty for one that runs.
	Excluded     string `json:"excluded,omitempty"`
	ExcludedDate string `json:"excluded_date,omitempty"`
}

// NextFires lists the job's first n fire times strictly after t: instants of its schedule
// plus their jitter, in the order the fleet fires them. With jitter an occurrence of the
// schedule before t may fire after it, and a later one before an earlier one, so the
// search starts a jitter before t and goes on until no later occurrence can fire sooner.
//
// The occurrences that a calendar excludes are listed too, marked (Fire.Excluded), and
// count toward n: the list is the schedule's, so that a holiday shows where it falls rather
// than as a gap. NextRun skips them.
func NextFires(j *config.Job, t time.Time, n int) []Fire {
	return fires(j, j.Sched, t, n)
}

// NextRun returns the job's first fire time after t that a calendar does not exclude.
func NextRun(j *config.Job, t time.Time) (Fire, bool) {
	f := fires(j, cron.Without(j.Sched, j.Location, j.Exclude), t, 1)
	if len(f) == 0 {
		return Fire{}, false
	}
	return f[0], true
}

func fires(j *config.Job, sched cron.Schedule, t time.Time, n int) []Fire {
	var out []Fire
	for s := t.Add(-j.Jitter); ; {
		s = sched.Next(s)
		if s.IsZero() || len(out) >= n && !s.Before(out[n-1].At) {
			break
		}
		id := cron.OccurrenceID(j.Name, s)
		jit := cron.Jitter(id, j.Jitter)
		at := s.Add(jit).UTC()
		if !at.After(t) {
			continue
		}
		zone, _ := s.In(j.Location).Zone()
		f := Fire{
			At: at, Scheduled: s.UTC(), Local: at.In(j.Location).Format("2006-01-02T15:04:05.000-07:00"),
			Zone: zone, JitterMS: jit.Milliseconds(), Occurrence: id, DST: dstNote(s, j.Location),
		}
		if x, ok := cron.Excluded(s, j.Location, j.Exclude); ok {
			f.Excluded, f.ExcludedDate = x.Calendar, x.Date.String()
		}
		out = append(out, f)
		slices.SortStableFunc(out, func(a, b Fire) int { return a.At.Compare(b.At) })
		out = out[:min(len(out), n)]
	}
	return out
}

// dstNote says how a daylight-saving change touches the instant s in loc (see Fire.DST).
func dstNote(s time.Time, loc *time.Location) string {
	t := s.In(loc)
	start, _ := t.ZoneBounds()
	_, off := t.Zone()
	if !start.IsZero() && t.Equal(start) {
		if _, prev := start.Add(-time.Nanosecond).Zone(); prev < off {
			return "at_change"
		}
	}
	// A wall reading that also occurs an offset's difference earlier or later is repeated.
	for _, d := range []time.Duration{-3 * time.Hour, -2 * time.Hour, -time.Hour, -30 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour} {
		u := t.Add(d)
		_, uoff := u.Zone()
		if uoff != off && u.Unix()+int64(uoff) == t.Unix()+int64(off) {
			if d > 0 {
				return "repeated_first"
			}
			return "repeated_second"
		}
	}
	return ""
}
