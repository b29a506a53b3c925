package cron

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// dateLayout is how a Date is written: the ISO 8601 calendar date.
const dateLayout = "2006-01-02"

// Date is a day of the proleptic Gregorian calendar, in no zone: which instants it holds
// depends on the zone it is read in.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate reads s as "YYYY-MM-DD", strictly: a one-digit month or day, or a day that its
// month does not have ("2026-02-30"), is an error naming s.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(dateLayout, s)
	if err != nil || t.Format(dateLayout) != s {
		return Date{}, fmt.Errorf("cron: date %q: want a calendar date written YYYY-MM-DD, such as \"2026-12-25\"", s)
	}
	return DateOf(t, time.UTC), nil
}

// DateOf returns the day t falls on in loc (UTC when nil).
func DateOf(t time.Time, loc *time.Location) Date {
	if loc == nil {
		loc = time.UTC
	}
	y, m, d := t.In(loc).Date()
	return Date{y, m, d}
}

// String writes d as ParseDate reads it.
func (d Date) String() string {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Format(dateLayout)
}

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool { return d.number() < e.number() }

// number counts the days from 1970-01-01 to d: the days of one calendar are kept as numbers
// so that a lookup is a comparison of integers.
func (d Date) number() int64 {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func dateOfNumber(n int64) Date { return DateOf(time.Unix(n*86400, 0), time.UTC) }

// DateRange is the days from From to To, both included.
type DateRange struct {
	From, To Date
}

// Calendar is a named set of whole days on which the jobs that exclude it do not run, as
// Quartz's HolidayCalendar. Its days are calendar dates: read in the calendar's own zone
// when it names one, and otherwise in the zone of each job that excludes it, so that
// "2026-12-25" means Christmas Day where the job's wall clock is. A Calendar never changes
// after NewCalendar, so every job of a job set shares one.
type Calendar struct {
	name   string
	loc    *time.Location // nil: the zone of the job that asks
	spans  []span         // ascending, disjoint and not adjacent
	digest string
}

// span is the days from one day number to another, both included.
type span struct{ from, to int64 }

// NewCalendar returns the calendar name of the days of ranges, read in loc, or in each job's
// zone when loc is nil. Overlapping and adjacent ranges are merged. A range that ends
// before it starts, or loc time.Local (it differs between nodes), is an error.
func NewCalendar(name string, loc *time.Location, ranges []DateRange) (*Calendar, error) {
	if loc == time.Local {
		return nil, fmt.Errorf("cron: calendar %q: time.Local is not allowed, it differs between nodes; load an IANA zone", name)
	}
	spans := make([]span, 0, len(ranges))
	for _, r := range ranges {
		if r.To.Before(r.From) {
			return nil, fmt.Errorf("cron: calendar %q: the range %s to %s ends before it starts", name, r.From, r.To)
		}
		spans = append(spans, span{r.From.number(), r.To.number()})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.from, b.from) })
	merged := spans[:0]
	for _, s := range spans {
		if n := len(merged); n > 0 && s.from <= merged[n-1].to+1 {
			merged[n-1].to = max(merged[n-1].to, s.to)
			continue
		}
		merged = append(merged, s)
	}
	c := &Calendar{name: name, loc: loc, spans: slices.Clip(merged)}
	c.digest = c.canonical()
	return c, nil
}

// canonical is the hex SHA-256 of what decides the calendar's days: its zone (or none) and
// its merged ranges. How the ranges were written (dates or ranges, in which order) does not
// change it, since it does not change which occurrences run.
func (c *Calendar) canonical() string {
	var b strings.Builder
	b.WriteString("cronfleet.calendar.v1\n")
	if c.loc != nil {
		b.WriteString(c.loc.String())
	}
	b.WriteByte('\n')
	for _, s := range c.spans {
		fmt.Fprintf(&b, "%s %s\n", dateOfNumber(s.from), dateOfNumber(s.to))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// Name is the calendar's name, as job files refer to it.
func (c *Calendar) Name() string { return c.name }

// Location is the zone the calendar's days are read in, or nil for the zone of each job.
func (c *Calendar) Location() *time.Location { return c.loc }

// Digest is the hex SHA-256 of the calendar's zone and days, merged: two calendars with the
// same digest exclude the same instants of every job. A job's definition hash includes it.
func (c *Calendar) Digest() string { return c.digest }

// Ranges returns the calendar's days as ascending, disjoint ranges, merged where they
// overlapped or touched.
func (c *Calendar) Ranges() []DateRange {
	out := make([]DateRange, len(c.spans))
	for i, s := range c.spans {
		out[i] = DateRange{dateOfNumber(s.from), dateOfNumber(s.to)}
	}
	return out
}

// Contains reports whether d is one of the calendar's days.
func (c *Calendar) Contains(d Date) bool {
	_, ok := c.find(d.number())
	return ok
}

// find returns the span that holds day n.
func (c *Calendar) find(n int64) (span, bool) {
	i, found := slices.BinarySearchFunc(c.spans, n, func(s span, n int64) int {
		switch {
		case s.to < n:
			return -1
		case s.from > n:
			return 1
		}
		return 0
	})
	if !found {
		return span{}, false
	}
	return c.spans[i], true
}

// zone is the zone the calendar's days are read in for a job of zone loc.
func (c *Calendar) zone(loc *time.Location) *time.Location {
	if c.loc != nil {
		return c.loc
	}
	if loc == nil {
		return time.UTC
	}
	return loc
}

// Exclusion says why an instant does not run: which calendar excludes it, and the day it
// falls on in that calendar's zone.
type Exclusion struct {
	Calendar string
	Date     Date
}

// String is the reason kept in the skipped occurrence's history record.
func (x Exclusion) String() string {
	return fmt.Sprintf("excluded by calendar %q (%s)", x.Calendar, x.Date)
}

// Excluded reports the first of cals, in order, that excludes the instant t, for a job whose
// zone is loc.
func Excluded(t time.Time, loc *time.Location, cals []*Calendar) (Exclusion, bool) {
	for _, c := range cals {
		d := DateOf(t, c.zone(loc))
		if c.Contains(d) {
			return Exclusion{Calendar: c.name, Date: d}, true
		}
	}
	return Exclusion{}, false
}

// Without returns s without the instants that cals exclude for a job of zone loc (see
// Excluded): the instants at which such a job runs. With no calendars it returns s.
func Without(s Schedule, loc *time.Location, cals []*Calendar) Schedule {
	if len(cals) == 0 {
		return s
	}
	return without{s: s, loc: loc, cals: cals}
}

type without struct {
	s    Schedule
	loc  *time.Location
	cals []*Calendar
}

// Next returns the first instant of s after t that no calendar excludes. An excluded
// instant sends the search to the end of the run of days that excluded it, so a calendar
// of a long range costs one step per range, not one per instant of the schedule.
func (w without) Next(t time.Time) time.Time {
	for {
		n := w.s.Next(t)
		if n.IsZero() || !n.After(t) {
			return n
		}
		skip, excluded := n, false
		for _, c := range w.cals {
			zone := c.zone(w.loc)
			sp, ok := c.find(DateOf(n, zone).number())
			if !ok {
				continue
			}
			excluded = true
			// The first instant of the day after the span, less a nanosecond, since Next
			// is strictly after its input. Where midnight falls in a daylight-saving gap
			// time.Date may answer an instant of the excluded day: never go back.
			end := dateOfNumber(sp.to + 1)
			if e := time.Date(end.Year, end.Month, end.Day, 0, 0, 0, 0, zone).Add(-time.Nanosecond); e.After(skip) {
				skip = e
			}
		}
		if !excluded {
			return n
		}
		t = skip
	}
}
