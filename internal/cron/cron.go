package cron

import (
	"fmt"
	"strings"
	"time"

	robfig "github.com/robfig/cron/v3"
)

// Schedule yields the instants at which a job is due.
type Schedule interface {
	// Next returns the first due instant strictly after t, or the zero time
	// when the schedule is never due again.
	Next(t time.Time) time.Time
}

// parseOptions configures robfig's parser: an optional leading seconds field,
// then the five classic fields, and descriptors such as @daily.
const parseOptions = robfig.SecondOptional | robfig.Minute | robfig.Hour |
	robfig.Dom | robfig.Month | robfig.Dow | robfig.Descriptor

// Options say how Parse reads a spec. The zero value reads it in UTC with
// the default daylight-saving policies.
type Options struct {
	// Location is the zone whose wall clock the spec names. Nil means UTC;
	// time.Local is rejected because it differs between nodes (use
	// LoadLocation).
	Location *time.Location
	// Gap and Repeat say which instants a wall time skipped or repeated by
	// a daylight-saving transition maps to. They apply to specs whose hour
	// field is restricted; see the package doc.
	Gap    GapPolicy
	Repeat RepeatPolicy
	// Seed picks the values of the spec's H forms: the job's name, so that
	// every node picks the same. A spec with H and no Seed is an error.
	Seed string
}

// Parse parses spec, a cron expression or descriptor, as o says. Errors name
// the spec.
func Parse(spec string, o Options) (s Schedule, err error) {
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	if loc == time.Local {
		return nil, fmt.Errorf("cron: parse %q: time.Local is not allowed, it differs between nodes; load an IANA zone", spec)
	}
	if err := o.Gap.check(); err != nil {
		return nil, fmt.Errorf("cron: parse %q: %w", spec, err)
	}
	if err := o.Repeat.check(); err != nil {
		return nil, fmt.Errorf("cron: parse %q: %w", spec, err)
	}
	// robfig's parser panics on some inputs; bad input must be an error.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("cron: parse %q: invalid spec (%v)", spec, r)
		}
	}()

	trimmed := strings.TrimSpace(spec)
	if strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ=") {
		return nil, fmt.Errorf("cron: parse %q: TZ= and CRON_TZ= prefixes are not supported; set the job's timezone attribute instead", spec)
	}
	if f := strings.Fields(trimmed); len(f) > 0 && f[0] == "@every" {
		if len(f) != 2 {
			return nil, fmt.Errorf("cron: parse %q: want \"@every <duration>\", e.g. \"@every 90s\"", spec)
		}
		return parseEvery(spec, f[1], loc)
	}

	resolved, err := resolveHash(trimmed, o.Seed)
	if err != nil {
		return nil, fmt.Errorf("cron: parse %q: %w", spec, err)
	}
	parsed, err := robfig.NewParser(parseOptions).Parse(resolved)
	if err != nil {
		return nil, fmt.Errorf("cron: parse %q: %w", spec, err)
	}
	ss, ok := parsed.(*robfig.SpecSchedule)
	if !ok {
		// Only "@every" yields another type, and it is handled above.
		return nil, fmt.Errorf("cron: parse %q: unsupported schedule type %T", spec, parsed)
	}
	if why := whyNever(ss); why != "" {
		return nil, fmt.Errorf("cron: parse %q: never matches: %s", spec, why)
	}
	return newSpecSchedule(*ss, loc, o.Gap, o.Repeat), nil
}

// Expand returns the instants at which s is due in (after, until], in
// increasing order, at most max of them. It stops early if s returns a time
// that is not after its input, so a faulty Schedule cannot loop forever.
func Expand(s Schedule, after, until time.Time, max int) []time.Time {
	if max <= 0 || !until.After(after) {
		return nil
	}
	var out []time.Time
	for t := after; len(out) < max; {
		n := s.Next(t)
		if n.IsZero() || !n.After(t) || n.After(until) {
			break
		}
		if out == nil {
			out = make([]time.Time, 0, min(max, 64))
		}
		out = append(out, n)
		t = n
	}
	return out
}
