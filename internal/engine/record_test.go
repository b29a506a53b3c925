package engine

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// TestBoundKeepsRecordsSmall: whatever a plugin sends, a history record stays within its
// bounds, keeps the output's tail and the message's head, and stays valid UTF-8.
func TestBoundKeepsRecordsSmall(t *testing.T) {
	md := map[string]string{}
	for i := range 1000 {
		md[fmt.Sprintf("k%04d", i)] = strings.Repeat("v", 5000)
	}
	md[strings.Repeat("K", 500)] = "long key"
	rec := &queue.Record{
		Output:   strings.Repeat("é", 1<<20) + "the last line",
		Message:  "the first words " + strings.Repeat("ü", 1<<20),
		Error:    strings.Repeat("x", 1<<20),
		Metadata: md,
	}
	bound(rec)
	if len(rec.Output) > maxOutput+len("…") || !strings.HasSuffix(rec.Output, "the last line") || !strings.HasPrefix(rec.Output, "…") {
		t.Errorf("output: %d bytes, ends %q; want at most %d bytes ending with the last line", len(rec.Output), rec.Output[len(rec.Output)-20:], maxOutput)
	}
	if len(rec.Message) > maxMessage+len("…") || !strings.HasPrefix(rec.Message, "the first words") {
		t.Errorf("message: %d bytes, starts %q", len(rec.Message), rec.Message[:20])
	}
	if len(rec.Error) > maxError+len("…") {
		t.Errorf("error: %d bytes", len(rec.Error))
	}
	if len(rec.Metadata) != maxMetadata {
		t.Errorf("metadata: %d pairs, want %d", len(rec.Metadata), maxMetadata)
	}
	for k, v := range rec.Metadata {
		if len(k) > maxMetadataKey+len("…") || len(v) > maxMetadataValue+len("…") {
			t.Errorf("metadata pair of %d+%d bytes", len(k), len(v))
		}
	}
	for _, s := range []string{rec.Output, rec.Message} {
		if !utf8.ValidString(s) {
			t.Errorf("cut in the middle of a rune: %q…", s[:10])
		}
	}

	// Small records are kept as they are.
	small := &queue.Record{Output: "ok\n", Message: "done", Error: "", Metadata: map[string]string{"exit_code": "0"}}
	bound(small)
	if small.Output != "ok\n" || small.Message != "done" || small.Metadata["exit_code"] != "0" || len(small.Metadata) != 1 {
		t.Errorf("small record changed: %+v", small)
	}
}
