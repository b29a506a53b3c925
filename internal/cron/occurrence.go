package cron

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// occurrenceLayout is the due-time part of an occurrence id: UTC, milliseconds.
const occurrenceLayout = "2006-01-02T15:04:05.000Z"

// OccurrenceID names the occurrence of job due at due, as
// "JOB@2006-01-02T15:04:05.000Z": the due instant in UTC, truncated to the
// millisecond. Every node derives the same id for the same occurrence, which
// is what makes adding it to the agenda idempotent.
func OccurrenceID(job string, due time.Time) string {
	var buf [len(occurrenceLayout) + 8]byte
	ts := due.UTC().AppendFormat(buf[:0], occurrenceLayout)
	var b strings.Builder
	b.Grow(len(job) + 1 + len(ts))
	b.WriteString(job)
	b.WriteByte('@')
	b.Write(ts)
	return b.String()
}

// triggerMark separates a triggered occurrence's instant from its nonce.
const triggerMark = '~'

// TriggeredID names an occurrence added by hand (runner trigger) at the instant at, as
// "JOB@2006-01-02T15:04:05.000Z~NONCE". The nonce, which the caller makes unique (a few
// random characters from [0-9a-z]), keeps it apart from the occurrence the schedule has at
// the same millisecond and from every other trigger: each is its own occurrence, run once.
func TriggeredID(job string, at time.Time, nonce string) string {
	return OccurrenceID(job, at) + string(triggerMark) + nonce
}

// IsTriggered reports whether id names an occurrence added by hand (TriggeredID) rather
// than one of its job's schedule.
func IsTriggered(id string) bool {
	i := strings.LastIndexByte(id, '@')
	return i >= 0 && strings.IndexByte(id[i:], triggerMark) >= 0
}

// ParseOccurrenceID splits an id made by OccurrenceID, TriggeredID, AlertID, DependentID or
// PartID into the job name and the due instant (in UTC; of an alert, the watched
// occurrence's; of a dependent, the upstream instant's; of a part, its parent's). It splits
// at the last '@', so job names may contain '@'. Only the exact forms those functions
// produce are accepted.
func ParseOccurrenceID(id string) (job string, due time.Time, err error) {
	whole := id
	if watched, _, ok := ParseAlert(id); ok {
		id = watched
	}
	if parent, _, _, ok := ParsePart(id); ok {
		id = parent
	}
	if IsDependent(id) {
		id = strings.TrimSuffix(id, afterMark)
	}
	job, due, err = parseOccurrenceID(id)
	if err != nil && whole != id {
		kind := "alert"
		switch {
		case IsPart(whole):
			kind = "part"
		case IsDependent(whole):
			kind = "dependent"
		}
		return "", time.Time{}, fmt.Errorf("cron: %s id %q: %w", kind, whole, err)
	}
	return job, due, err
}

func parseOccurrenceID(id string) (job string, due time.Time, err error) {
	i := strings.LastIndexByte(id, '@')
	if i < 0 {
		return "", time.Time{}, fmt.Errorf("cron: occurrence id %q: missing '@'", id)
	}
	job, ts := id[:i], id[i+1:]
	if j := strings.IndexByte(ts, triggerMark); j >= 0 {
		nonce := ts[j+1:]
		if nonce == "" || strings.Trim(nonce, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
			return "", time.Time{}, fmt.Errorf("cron: occurrence id %q: the trigger's nonce must be [0-9a-z]+", id)
		}
		ts = ts[:j]
	}
	if job == "" {
		return "", time.Time{}, fmt.Errorf("cron: occurrence id %q: empty job name", id)
	}
	if due, ok := parseInstant(ts); ok {
		return job, due, nil
	}
	// What is wrong with it, as time.Parse tells.
	due, err = time.Parse(occurrenceLayout, ts)
	if err == nil && due.Format(occurrenceLayout) != ts {
		// time.Parse is lenient about some fields (a one-digit hour); an id
		// must be canonical so that equal occurrences have equal ids.
		err = errors.New("not in canonical form " + occurrenceLayout)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("cron: occurrence id %q: %w", id, err)
	}
	return job, due, nil
}

// parseInstant reads ts if it is an instant exactly as OccurrenceID writes it, and says
// whether it was. Every run of a node parses its occurrence's id, and time.Parse, with the
// Format that checks the result is canonical, was a sizeable part of what a run cost the
// node; this reads the fixed positions alone and leaves the rest, and the error, to them.
func parseInstant(ts string) (time.Time, bool) {
	if len(ts) != len(occurrenceLayout) {
		return time.Time{}, false
	}
	var v [7]int // year, month, day, hour, minute, second, millisecond
	field := 0
	for i := 0; i < len(ts); i++ {
		c, l := ts[i], occurrenceLayout[i]
		if l >= '0' && l <= '9' { // a digit of the layout: one of the value
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			v[field] = v[field]*10 + int(c-'0')
			if i+1 == len(ts) || occurrenceLayout[i+1] < '0' || occurrenceLayout[i+1] > '9' {
				field++
			}
		} else if c != l {
			return time.Time{}, false
		}
	}
	t := time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], v[6]*int(time.Millisecond), time.UTC)
	// time.Date carries fields out of range over (a 30th of February is a 2nd of March),
	// which no canonical id has.
	if t.Year() != v[0] || int(t.Month()) != v[1] || t.Day() != v[2] || t.Hour() != v[3] || t.Minute() != v[4] || t.Second() != v[5] {
		return time.Time{}, false
	}
	return t, true
}
