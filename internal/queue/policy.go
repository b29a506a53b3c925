package queue

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Overlap is what becomes of an occurrence that falls due while an earlier one of its job
// has not finished (it runs, or waits for a retry) anywhere in the fleet. The claim script
// decides it (lua/claim.lua), so two nodes never act apart.
type Overlap string

// The overlap policies.
const (
	// OverlapSkip records the new occurrence as skipped: the default, as a job that
	// overruns its interval rarely wants a second copy of itself.
	OverlapSkip Overlap = "skip"
	// OverlapBufferOne lets one occurrence wait and run as soon as the earlier one ends;
	// further ones are skipped while it waits.
	OverlapBufferOne Overlap = "buffer_one"
	// OverlapBufferAll lets every occurrence wait, up to WaitLimit, and run one after
	// another.
	OverlapBufferAll Overlap = "buffer_all"
	// OverlapCancelOther cancels the earlier run, on whichever node holds it, and runs the
	// new occurrence once it ended.
	OverlapCancelOther Overlap = "cancel_other"
	// OverlapAllow runs every occurrence at its time, however many of the job run already.
	OverlapAllow Overlap = "allow"
)

// WaitLimit bounds the occurrences of one job that wait for its overlap slot; those beyond
// it are skipped, so a job that always overruns cannot grow Redis without bound.
const WaitLimit = 1000

// ParseOverlap reads an overlap policy by name.
func ParseOverlap(s string) (Overlap, error) {
	switch o := Overlap(s); o {
	case OverlapSkip, OverlapBufferOne, OverlapBufferAll, OverlapCancelOther, OverlapAllow:
		return o, nil
	}
	return "", fmt.Errorf("unknown overlap policy %q (want skip, buffer_one, buffer_all, cancel_other or allow)", s)
}

// Catchup is what becomes of the occurrences of a job that fell due while no node was
// claiming (the whole fleet or Redis was down), once one is again.
type Catchup string

// The catch-up policies.
const (
	// CatchupNone records them all as missed.
	CatchupNone Catchup = "none"
	// CatchupLatest runs the newest of them, within the window, and records the others as
	// missed: the default, as most jobs (a backup, a report) need one run to catch up, not
	// one per missed slot.
	CatchupLatest Catchup = "latest"
	// CatchupAll runs each of them within the window.
	CatchupAll Catchup = "all"
)

// DefaultCatchupWindow is how far back missed occurrences are still run by default. With
// the default policy it only decides whether the newest missed run of a job still runs: a
// day covers a daily job and an outage over a night or a weekend day, while the input of an
// older run is usually gone or stale.
const DefaultCatchupWindow = 24 * time.Hour

// ParseCatchup reads a catch-up policy by name.
func ParseCatchup(s string) (Catchup, error) {
	switch c := Catchup(s); c {
	case CatchupNone, CatchupLatest, CatchupAll:
		return c, nil
	}
	return "", fmt.Errorf("unknown catchup policy %q (want none, latest or all)", s)
}

// Policy is what the claim script applies to a job's occurrences. Its zero fields mean the
// defaults (DefaultPolicy).
type Policy struct {
	Overlap       Overlap
	Catchup       Catchup
	CatchupWindow time.Duration
}

// DefaultPolicy is the policy of a job that sets none: skip, latest, DefaultCatchupWindow.
func DefaultPolicy() Policy {
	return Policy{Overlap: OverlapSkip, Catchup: CatchupLatest, CatchupWindow: DefaultCatchupWindow}
}

// String is the policy as the claim script reads it: "OVERLAP CATCHUP WINDOWMS", its zero
// fields filled from DefaultPolicy.
func (p Policy) String() string {
	d := DefaultPolicy()
	if p.Overlap == "" {
		p.Overlap = d.Overlap
	}
	if p.Catchup == "" {
		p.Catchup = d.Catchup
	}
	if p.CatchupWindow <= 0 {
		p.CatchupWindow = d.CatchupWindow
	}
	return string(p.Overlap) + " " + string(p.Catchup) + " " + strconv.FormatInt(p.CatchupWindow.Milliseconds(), 10)
}

// Alerts is what the scripts need to know of a job's alert block; the zero value alerts on
// nothing. The failure alert is the completing node's to add (Completion.Alert), the missed
// one the claim script's, the late watch the expansion's.
type Alerts struct {
	Failure, Missed bool
	// LateAfter, if not zero, adds with each of the job's occurrences a watch due that long
	// after it, which alerts if the occurrence has not started by then.
	LateAfter time.Duration
}

// String is the alerts as the scripts read them: "KINDS LATEMS", or "" for none.
func (a Alerts) String() string {
	var kinds []string
	if a.Failure {
		kinds = append(kinds, "failure")
	}
	if a.Missed {
		kinds = append(kinds, "missed")
	}
	if a.LateAfter > 0 {
		kinds = append(kinds, "late")
	}
	if len(kinds) == 0 {
		return ""
	}
	return strings.Join(kinds, ",") + " " + strconv.FormatInt(a.LateAfter.Milliseconds(), 10)
}
