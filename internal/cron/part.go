package cron

import (
	"strconv"
	"strings"
)

// partMark separates a part's parent occurrence from its index and count. A trigger's nonce
// is [0-9a-z]+ and an alert's mark is "~alert-", so the dash after "part" keeps a part apart
// from both.
const partMark = "~part-"

// PartID names part index (counting from 0) of count of the occurrence parent (an id made
// by OccurrenceID, TriggeredID or DependentID), as "PARENT~part-INDEX-of-COUNT": one part of
// a broadcast or sharded occurrence. A part is an occurrence of its parent's job, so it lives
// in the parent's agenda shard and the script that ends the last part can end the parent in
// the same atomic step; its id, derived from the parent's, is the same on every node, which
// makes adding the parts idempotent.
func PartID(parent string, index, count int) string {
	return parent + partMark + strconv.Itoa(index) + "-of-" + strconv.Itoa(count)
}

// ParsePart splits a part's id (PartID) into its parent occurrence's id, its index and the
// count of parts. ok is false for an id that names no part.
func ParsePart(id string) (parent string, index, count int, ok bool) {
	i := strings.LastIndex(id, partMark)
	if i < 0 || strings.IndexByte(id[i:], '@') >= 0 || strings.LastIndexByte(id[:i], '@') < 0 {
		return "", 0, 0, false
	}
	is, cs, found := strings.Cut(id[i+len(partMark):], "-of-")
	if !found {
		return "", 0, 0, false
	}
	index, err1 := strconv.Atoi(is)
	count, err2 := strconv.Atoi(cs)
	// Canonical only: equal parts must have equal ids.
	if err1 != nil || err2 != nil || index < 0 || count < 1 || index >= count ||
		strconv.Itoa(index) != is || strconv.Itoa(count) != cs {
		return "", 0, 0, false
	}
	return id[:i], index, count, true
}

// IsPart reports whether id names a part of a broadcast or sharded occurrence (PartID).
func IsPart(id string) bool {
	_, _, _, ok := ParsePart(id)
	return ok
}
