// Package sdktest runs a cronfleet handler in the test's own process, with
// a fake occurrence, so that plugin authors can test a handler with go test
// alone: no runner, no Redis, no plugin process.
//
// Run checks what the runner would check before the handler ever ran: that
// the handler's Schema is valid and that the settings match it (required
// attributes present, no unknown attribute, every value of its type). It
// then calls the handler as plugin/sdk's Serve does (schema defaults filled
// in, output streamed line by line, panics turned into errors) and returns
// the result, the output lines and the error. A test thus catches a Schema
// that disagrees with the struct the handler decodes into.
//
// The settings are JSON (a string, []byte or json.RawMessage) or any value
// that encodes to a JSON object, such as a map[string]any. They are checked
// strictly, the way they arrive after the runner decoded the job file: the
// runner has already converted HCL values to the attribute's type, so here
// 1 is not a string.
//
// To test the whole plugin binary, handshake included, use
// "runner plugin check PATH".
package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// Occurrence is the fake occurrence a handler runs for. Zero fields take
// the defaults named on each field.
type Occurrence struct {
	// Job defaults to "test-job".
	Job string
	// ScheduledAt defaults to 2026-01-01T00:00:00Z; it is passed in UTC.
	ScheduledAt time.Time
	// Attempt defaults to 1.
	Attempt int
	// FencingToken defaults to 1.
	FencingToken int64
	// OccurrenceID defaults to Job@ScheduledAt (RFC 3339).
	OccurrenceID string
	// Node defaults to "sdktest".
	Node string
	// Alert, if not nil, makes the run an alert about the event it describes.
	Alert *sdk.Alert
	// ShardIndex and ShardCount make the run a part of a broadcast or sharded
	// occurrence (sdk.Run.ShardIndex); a zero ShardCount, the default, makes
	// it a whole occurrence.
	ShardIndex, ShardCount int
}

// NewRun returns the sdk.Run the handler sees for occ and settings
// (encoded as by Run, not checked).
func NewRun(occ Occurrence, settings any) (*sdk.Run, error) {
	raw, err := encode(settings)
	if err != nil {
		return nil, err
	}
	if occ.Job == "" {
		occ.Job = "test-job"
	}
	if occ.ScheduledAt.IsZero() {
		occ.ScheduledAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if occ.Attempt == 0 {
		occ.Attempt = 1
	}
	if occ.FencingToken == 0 {
		occ.FencingToken = 1
	}
	if occ.OccurrenceID == "" {
		occ.OccurrenceID = occ.Job + "@" + occ.ScheduledAt.UTC().Format(time.RFC3339)
	}
	if occ.Node == "" {
		occ.Node = "sdktest"
	}
	return &sdk.Run{
		Job:          occ.Job,
		ScheduledAt:  occ.ScheduledAt.UTC(),
		Attempt:      occ.Attempt,
		FencingToken: occ.FencingToken,
		OccurrenceID: occ.OccurrenceID,
		Node:         occ.Node,
		Settings:     raw,
		Alert:        occ.Alert,
		ShardIndex:   occ.ShardIndex,
		ShardCount:   occ.ShardCount,
	}, nil
}

// Run runs h for occ with settings under t.Context() and returns the
// handler's result, its output lines and its error. It fails the test
// (t.Fatal) when h's Schema is invalid or settings do not match it; use
// CheckSettings to test that settings are rejected.
func Run(t testing.TB, h sdk.Handler, occ Occurrence, settings any) (*sdk.Result, []string, error) {
	t.Helper()
	return RunContext(t.Context(), t, h, occ, settings)
}

// RunContext is Run under ctx, e.g. to test that the handler stops when
// its ctx is cancelled or times out.
func RunContext(ctx context.Context, t testing.TB, h sdk.Handler, occ Occurrence, settings any) (*sdk.Result, []string, error) {
	t.Helper()
	if err := CheckSettings(h, settings); err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	run, err := NewRun(occ, settings)
	if err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	var (
		mu    sync.Mutex
		lines []string
	)
	res, err := sdk.Call(ctx, h, run, func(l string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, l)
	})
	mu.Lock()
	defer mu.Unlock()
	return res, lines, err
}

// CheckSettings reports whether h's Schema is valid, settings match it and
// h's own Check (if it is an sdk.Checker) finds nothing, as the runner
// checks a job file's handler block. The Check findings are joined into one
// error, each an *sdk.SettingError when it names an attribute.
func CheckSettings(h sdk.Handler, settings any) error {
	schema := h.Schema()
	if err := schema.Validate(); err != nil {
		return err
	}
	raw, err := encode(settings)
	if err != nil {
		return err
	}
	if err := schema.CheckSettings(raw); err != nil {
		return err
	}
	var errs []error
	for _, p := range sdk.Check(h, raw) {
		if p.Attribute != "" {
			errs = append(errs, &sdk.SettingError{Attribute: p.Attribute, Message: p.Message})
		} else {
			errs = append(errs, errors.New(p.Message))
		}
	}
	return errors.Join(errs...)
}

// encode turns settings into a JSON object.
func encode(settings any) (json.RawMessage, error) {
	var raw []byte
	switch s := settings.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case json.RawMessage:
		raw = s
	case []byte:
		raw = s
	case string:
		raw = []byte(s)
	default:
		b, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("sdktest: encode settings: %w", err)
		}
		raw = b
	}
	if strings.TrimSpace(string(raw)) == "" {
		return json.RawMessage("{}"), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("sdktest: settings %s are not a JSON object", raw)
	}
	return raw, nil
}
