// Package cron owns the pure computation of when a job is due: parsing a
// schedule, loading its time zone, stepping from one due instant to the next
// across daylight-saving transitions as the job's policies say, joining and
// bounding schedules, naming each occurrence with a stable id and deriving
// its jitter from that id. It reads no clock, keeps no mutable state and
// performs no I/O, so every node of a fleet that is given the same spec,
// options and instant computes the same answer. That agreement is what makes
// leaderless expansion idempotent: two nodes that expand the same job add the
// same occurrence ids to the agenda.
//
// Three forms of occurrence id exist: JOB@INSTANT (OccurrenceID, the schedule's),
// JOB@INSTANT~NONCE (TriggeredID, added by hand) and ANY~alert-KIND (AlertID: the alert
// about the occurrence ANY, which is an occurrence of the same job). ParseOccurrenceID
// reads all three; IsTriggered and IsAlert tell them apart.
//
// # Specs
//
// A spec is five cron fields (minute hour day-of-month month day-of-week), an
// optional leading seconds field, or a descriptor: @yearly (@annually),
// @monthly, @weekly, @daily (@midnight), @hourly or "@every D". Any field may
// use the H forms (see below). Parse reads a spec as its Options say: the
// zone, the daylight-saving policies and the seed for H.
//
// Field parsing is delegated to github.com/robfig/cron/v3, but only its Parser
// and SpecSchedule are used, never its Cron runner (a hidden goroutine, a
// global logger and tests that need the wall clock). Its parser and schedule
// are wrapped because, used directly, they
//   - panic on a "TZ=" or "CRON_TZ=" prefix with nothing after it; Parse rejects
//     every such prefix, since the zone belongs in the job's timezone attribute
//     where it is validated and shown once, and recovers from any other panic;
//   - accept specs that can never match ("0 0 30 2 *", or a field that is an
//     empty list such as ",") and then return the zero time from Next, after
//     searching five years, second by second for an empty list; Parse rejects
//     them with an error saying why;
//   - give up after five years, although Feb 29 can be eight years apart
//     (2096, 2104); Next resumes the search instead of reporting "never";
//   - default to time.Local, which differs between nodes; Parse refuses it;
//   - step through real time, which skips wall times in the spring-forward gap
//     and repeats those in the fall-back hour (see below);
//   - run "@every D" relative to whenever it was first asked, which differs
//     between nodes (see below).
//
// # H: a value per job
//
// As in Jenkins, a field may be written H for one value picked per job, so
// that jobs written alike ("H 2 * * *") spread out instead of all starting
// at once, while every node picks the same value for the same job. The seed
// (Options.Seed, the job's name) and the field are hashed with 64-bit FNV-1a
// and the hash is reduced to the field's range. H(a-b) picks within a-b. H/n
// runs every n from an offset below n that the hash picks ("H/15" in the
// minute field might become "7-59/15"), and H(a-b)/n does so within a-b. H
// may stand in any field, alone or as an element of a list, each element
// hashed with its place in the list; in the day-of-month field, H and H/n
// keep to days 1 to 28, which every month has. A spec with H and no seed is
// an error, and Resolve shows the expression that results.
//
// The hash is part of every H job's schedule: changing the function, or the
// bytes it hashes (the seed, a zero byte, the field's name as in "minute" or
// "day-of-month", a zero byte, the element's place in decimal), moves every
// H job of every fleet, and so does renaming a job. TestResolve pins some
// values so that no change goes unnoticed.
//
// # Daylight-saving time
//
// A spec whose hour field is restricted (anything but all 24 hours) names
// wall-clock times: "30 2 * * *" means "at half past two, local time". Such a
// schedule is computed in wall-clock space, and each matching wall time maps
// to the instants that read it in the zone: one on most days, none when a
// spring-forward transition skips it (a gap), two when a fall-back
// transition repeats it. The schedule's policies, Options.Gap and
// Options.Repeat, then choose:
//   - GapShift, the default, runs a wall time in a gap once at the
//     transition, the first instant after the gap: New York's 2026-03-08
//     02:30 runs at 03:00 EDT. GapSkip does not run it at all.
//   - RepeatOnceFirst, the default, runs a repeated wall time once, at its
//     first instant: New York's 2026-11-01 01:30 runs at 01:30 EDT, not again
//     at 01:30 EST. RepeatOnceLast runs it at 01:30 EST only, RepeatBoth at
//     both, an hour apart.
//
// A schedule is due at every instant that the policies keep for some
// matching wall time, once: the wall times of one gap that GapShift moves
// onto the transition, and the transition's own wall time if it matches,
// run there once.
//
// Next does not try wall times one by one. It walks the zone's periods of
// constant offset from the instant it is given: within a period, wall time
// and real time advance together, so what a period contributes is the
// matching wall times of one range of readings, shifted by its offset. The
// repeat policy only narrows that range, dropping the first copies of the
// readings repeated after the period or the second copies of those repeated
// before it, and under GapShift a period that follows a gap holding a
// matching wall time is due at its first instant. The walk meets instants in
// order, so the first one it finds is the answer, at the cost of one field
// search per period. A search in wall-time order would need special cases
// where the two orders differ: from the first copy of a repeated hour, the
// second copies of earlier wall times are still to come, and a per-second
// spec would make it step through thousands of wall times.
//
// A spec whose hour field covers all hours ("*/15 * * * *", "0 * * * *",
// "@hourly") describes an interval, so it follows real time whatever the
// policies, as Vixie cron does for wildcard-hour jobs: both copies of a
// repeated hour run and a nonexistent hour does not (the walk above under
// GapSkip and RepeatBoth). Treating "*/15 * * * *" like a fixed time would
// silence it for the whole repeated hour, and shifting its gap minutes onto
// the transition would run it four times at one instant.
//
// Zones come from the IANA database; time/tzdata is embedded so that a node
// without a zoneinfo directory resolves every zone too. When the host has one,
// Go's time package prefers it, so nodes should run the same tz release.
// "Local" is rejected because it means something different on every node.
//
// # @every
//
// "@every D" is due at every instant that is a whole multiple of D since the
// Unix epoch (1970-01-01T00:00:00Z), so every node computes the same instants
// however long it has been running, and neither the zone nor the policies
// matter ("@every 24h" is due at midnight UTC). D must be at least one second
// and a whole number of seconds: cron specs have second granularity, and
// sub-second periods would only invite ids that differ in their milliseconds
// for no scheduling benefit.
//
// # Range
//
// Due instants lie after the zero time (0001-01-01T00:00:00Z), which Next
// returns to mean "never again", and no later than the end of the year 9999
// UTC, the last an occurrence id can spell. Next of the zero time is thus the
// first occurrence ever.
//
// # Several triggers and bounds
//
// Union joins schedules, a job with several triggers ("0 9 * * 1-5" and
// "0 11 * * 0,6"): it is due at the earliest next instant of any member, so
// an instant that several share is due once and instants strictly increase.
// Bounded keeps a schedule to a window: the first occurrence is the first at
// or after its start, and none comes after its end, which is included. Both
// are schedules like any other, so Expand and the agenda need nothing new.
//
// # Calendars
//
// A Calendar is a named set of whole days, as Quartz's HolidayCalendar: a job that excludes
// it does not run on those days. A day is a calendar date, not a span of instants, so it is
// read in a zone: the calendar's own when it names one, and otherwise the zone of each job
// that excludes it ("2026-12-25" is Christmas Day on the job's wall clock, whatever daylight
// saving does to its length). Excluded says which calendar excludes an instant and the date
// it falls on there; Without is a schedule less those instants, which skips a whole run of
// excluded days in one step. The test is on the schedule's instant, never a jittered one,
// so the decision does not depend on the jitter and the occurrence id says it all.
//
// # Occurrence ids
//
// OccurrenceID names one occurrence as "JOB@2006-01-02T15:04:05.000Z", the
// job name and its due instant in UTC with millisecond precision.
// ParseOccurrenceID splits at the last '@', so job names may contain '@'.
//
// # Jitter
//
// Jitter spreads the starts of occurrences due at the same instant: a delay
// in [0, max) in whole milliseconds, drawn from the occurrence id with 64-bit
// FNV-1a, so every node computes the same start without asking another. It
// only ever delays: an occurrence never starts before its due instant. The
// id stays the nominal, un-jittered instant, so the idempotency key and the
// catch-up arithmetic do not depend on the jitter. Changing the hash moves
// the start of every jittered occurrence, not the occurrences themselves.
package cron
