package cron_test

import (
	"fmt"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
)

// A job due at 02:30 in New York runs once at 03:00 EDT on the night the
// clocks skip from 02:00 to 03:00.
func Example() {
	loc, err := cron.LoadLocation("America/New_York")
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := cron.Parse("30 2 * * *", cron.Options{Location: loc})
	if err != nil {
		fmt.Println(err)
		return
	}
	after := time.Date(2026, 3, 7, 0, 0, 0, 0, loc)
	for _, due := range cron.Expand(s, after, after.AddDate(0, 0, 3), 10) {
		fmt.Println(due.Format(time.RFC3339), cron.OccurrenceID("db-backup", due))
	}

	_, err = cron.Parse("0 0 30 2 *", cron.Options{Location: loc})
	fmt.Println(err)
	// Output:
	// 2026-03-07T02:30:00-05:00 db-backup@2026-03-07T07:30:00.000Z
	// 2026-03-08T03:00:00-04:00 db-backup@2026-03-08T07:00:00.000Z
	// 2026-03-09T02:30:00-04:00 db-backup@2026-03-09T06:30:00.000Z
	// cron: parse "0 0 30 2 *": never matches: no month has that day
}

// Under GapSkip and RepeatBoth, a job due at 02:30 in Berlin does not run
// on the night the clocks skip from 02:00 to 03:00, and runs twice on the
// night they go back from 03:00 to 02:00.
func ExampleOptions() {
	loc, err := cron.LoadLocation("Europe/Berlin")
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := cron.Parse("30 2 * * *", cron.Options{Location: loc, Gap: cron.GapSkip, Repeat: cron.RepeatBoth})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, after := range []time.Time{time.Date(2026, 3, 28, 0, 0, 0, 0, loc), time.Date(2026, 10, 24, 0, 0, 0, 0, loc)} {
		for _, due := range cron.Expand(s, after, after.AddDate(0, 0, 3), 10) {
			fmt.Println(due.Format(time.RFC3339))
		}
	}
	// Output:
	// 2026-03-28T02:30:00+01:00
	// 2026-03-30T02:30:00+02:00
	// 2026-10-24T02:30:00+02:00
	// 2026-10-25T02:30:00+02:00
	// 2026-10-25T02:30:00+01:00
	// 2026-10-26T02:30:00+01:00
}

// @every is anchored at the Unix epoch, so every node computes the same
// instants however long it has been running.
func ExampleParse_every() {
	s, err := cron.Parse("@every 90s", cron.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Next(time.Date(2026, 5, 1, 12, 0, 1, 0, time.UTC)))
	// Output:
	// 2026-05-01 12:01:30 +0000 UTC
}

func ExampleParseOccurrenceID() {
	job, due, err := cron.ParseOccurrenceID("ops@team@2026-03-08T07:00:00.000Z")
	fmt.Println(job, due, err)
	// Output:
	// ops@team 2026-03-08 07:00:00 +0000 UTC <nil>
}

// H picks one value per job from the job's name, the same on every node, so
// that jobs written alike do not all start at once.
func ExampleResolve() {
	for _, job := range []string{"db-backup", "report"} {
		spec, err := cron.Resolve("H H(0-5) * * *", job)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(job, spec)
	}
	// Output:
	// db-backup 40 0 * * *
	// report 53 5 * * *
}
