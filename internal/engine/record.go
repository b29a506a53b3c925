package engine

import (
	"sort"
	"unicode/utf8"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// Bounds on what one history record keeps of a run. History keeps a fixed number of
// records per job, but a record's fields come from the plugin, which could send megabytes
// (gRPC allows 4 MiB a message): the bounds make a job's history bounded in bytes too, at
// about HistoryLimit × 75 KiB.
const (
	maxOutput        = 64 << 10 // the tail is kept: it usually says why a run failed
	maxMessage       = 1 << 10
	maxError         = 4 << 10
	maxMetadata      = 32 // pairs; the first keys in sorted order are kept
	maxMetadataKey   = 128
	maxMetadataValue = 1 << 10
)

// bound cuts a run's record down to the bounds above, marking every cut with "…".
func bound(rec *queue.Record) {
	rec.Output = keepTail(rec.Output, maxOutput)
	rec.Message = keepHead(rec.Message, maxMessage)
	rec.Error = keepHead(rec.Error, maxError)
	if withinBounds(rec.Metadata) {
		return // the usual case: nothing to copy on every completion
	}
	keys := make([]string, 0, len(rec.Metadata))
	for k := range rec.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	md := make(map[string]string, min(len(keys), maxMetadata))
	for _, k := range keys[:min(len(keys), maxMetadata)] {
		md[keepHead(k, maxMetadataKey)] = keepHead(rec.Metadata[k], maxMetadataValue)
	}
	rec.Metadata = md
}

// withinBounds reports whether md needs no cutting.
func withinBounds(md map[string]string) bool {
	if len(md) > maxMetadata {
		return false
	}
	for k, v := range md {
		if len(k) > maxMetadataKey || len(v) > maxMetadataValue {
			return false
		}
	}
	return true
}

// keepHead returns s cut to at most n bytes (on a rune boundary) plus "…" if it was longer.
func keepHead(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// keepTail returns "…" plus the last at most n bytes of s (from a rune boundary) if s is
// longer than n.
func keepTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return "…" + s[i:]
}
