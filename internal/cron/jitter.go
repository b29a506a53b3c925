package cron

import "time"

// Jitter returns how long after its due instant the occurrence named
// occurrenceID (see OccurrenceID) starts: a delay in [0, max) in whole
// milliseconds, the precision of the id, drawn from the id's 64-bit FNV-1a
// hash so that every node computes the same. A max of zero or less gives
// zero. Jitter only ever delays an occurrence, never makes it earlier, and
// the id stays the nominal, un-jittered instant: it names what is due, the
// jitter only when it starts.
func Jitter(occurrenceID string, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	slots := uint64(max / time.Millisecond)
	if max%time.Millisecond != 0 {
		slots++ // the last, partial millisecond still starts below max
	}
	return time.Duration(fnv1a(fnvOffset, occurrenceID)%slots) * time.Millisecond
}

// FNV-1a, 64 bits, as in hash/fnv, over strings without a copy.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnv1a continues the FNV-1a hash h over s.
func fnv1a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}
