package cron

import "strings"

// afterMark ends the id of an occurrence run because others ended (DependentID). A
// trigger's nonce is [0-9a-z]+ and an alert's mark has a dash, so neither can end so.
const afterMark = "~after"

// DependentID names the occurrence of job that runs after the occurrence upstream ended
// (an id made by OccurrenceID, TriggeredID or DependentID), as "JOB@INSTANT~after":
// INSTANT is upstream's part after its last '@' without its own "~after", so that every
// job downstream of one scheduled instant, however far down a chain, names that instant.
// Being derived from the instant and not from the upstream job, the id is the same for
// every upstream of that instant: a job after several (fan-in) gets one occurrence per
// instant, whichever of them ends last, and adding it is idempotent.
func DependentID(job, upstream string) string {
	rest := upstream[strings.LastIndexByte(upstream, '@')+1:]
	return job + "@" + strings.TrimSuffix(rest, afterMark) + afterMark
}

// IsDependent reports whether id names an occurrence run after others (DependentID).
func IsDependent(id string) bool {
	i := strings.LastIndexByte(id, '@')
	return i >= 0 && strings.HasSuffix(id[i:], afterMark)
}
