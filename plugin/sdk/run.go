package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"
)

// Handler runs job occurrences.
//
// Schema describes the handler block's attributes. It is asked once per
// plugin process; the runner checks every job file against it before
// anything runs. It must return the same Schema on every call.
//
// Run is called concurrently, once per occurrence attempt. A non-nil error
// fails the attempt (the runner retries per the job's policy, unless the
// error is marked with Permanent); the Result may be non-nil in both cases,
// e.g. to report an exit code together with the failure.
type Handler interface {
	Schema() Schema
	Run(ctx context.Context, run *Run) (*Result, error)
}

// HandlerFunc adapts a function to a Handler whose block takes no
// attributes (its Schema is empty, so any attribute in the job file is an
// error). Use Func to declare attributes.
type HandlerFunc func(ctx context.Context, run *Run) (*Result, error)

// Schema returns the empty Schema.
func (f HandlerFunc) Schema() Schema { return Schema{} }

// Run calls f.
func (f HandlerFunc) Run(ctx context.Context, run *Run) (*Result, error) { return f(ctx, run) }

// Func returns a Handler with the given schema that runs fn.
func Func(schema Schema, fn func(ctx context.Context, run *Run) (*Result, error)) Handler {
	return funcHandler{schema: schema, fn: fn}
}

type funcHandler struct {
	schema Schema
	fn     func(ctx context.Context, run *Run) (*Result, error)
}

func (h funcHandler) Schema() Schema { return h.schema }
func (h funcHandler) Run(ctx context.Context, run *Run) (*Result, error) {
	return h.fn(ctx, run)
}

// Run describes one attempt at one occurrence of a job. The runner fills in
// the exported fields; a Run must not be copied after first use.
type Run struct {
	// Job is the job's name.
	Job string
	// ScheduledAt is the occurrence's due time, in UTC.
	ScheduledAt time.Time
	// Attempt counts from 1.
	Attempt int
	// FencingToken grows strictly with every claim of the job. Pass it to
	// systems that can refuse writes from a stale holder.
	FencingToken int64
	// OccurrenceID is stable across attempts and nodes: use it as the
	// idempotency key of the work.
	OccurrenceID string
	// Node names the runner node running this attempt.
	Node string
	// Settings is the job's handler block as a JSON object; see Decode.
	// Attributes the block leaves out (or sets to null) are set to their
	// Schema Default before Run is called.
	Settings json.RawMessage
	// StopWithin is how long the handler has, once ctx is done, to have
	// stopped its work (its processes killed, its writes abandoned): when
	// the runner cannot renew the occurrence's lease it cancels ctx that long
	// before the lease expires, after which another node may run the
	// occurrence. A handler that stops in stages (SIGTERM, then SIGKILL)
	// fits them within it. Zero when the runner did not say.
	StopWithin time.Duration
	// Alert, when not nil, says that this run is an alert: the job's alert
	// handler called about an event of one of the job's occurrences, not a run
	// of the job's work. OccurrenceID is then the alert's own id (the
	// idempotency key of the notification) and Alert.Occurrence the id of the
	// occurrence the event is about.
	Alert *Alert
	// Upstream are, when this occurrence runs because others ended (the job's
	// after blocks), the ids of those upstream occurrences, sorted: one, or
	// one per upstream job of a fan-in. Empty for a scheduled run.
	Upstream []string
	// ShardIndex and ShardCount say, for a part of a broadcast or sharded
	// occurrence (the job's broadcast or shards), which part this is, from 0,
	// and how many there are: the part's share of the work. OccurrenceID is
	// then the part's own id, the idempotency key of its share. ShardCount is
	// 0 for a run that is not a part (and from a runner that predates parts):
	// such a run does all the work.
	ShardIndex, ShardCount int

	output func(line string) // set by Serve; nil means discard
	logger *slog.Logger      // set by Serve; nil means discard

	writerOnce sync.Once
	writer     *lineWriter
}

// Decode unmarshals Settings into v, strictly: a field that v does not
// declare is an error, so that a mismatch between the Schema and v fails
// the run loudly instead of being ignored. Empty Settings decode as an
// empty object. Its errors are Permanent: the same settings fail again.
func (r *Run) Decode(v any) error {
	data := bytes.TrimSpace(r.Settings)
	if len(data) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Permanent(fmt.Errorf("sdk: decode settings: %w", err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Permanent(errors.New("sdk: decode settings: trailing data after the JSON object"))
	}
	return nil
}

// Output returns a writer whose lines are streamed to the runner while the
// handler runs (a trailing partial line is sent when Run returns). It is
// safe for concurrent use. Writes after Run returned are dropped.
func (r *Run) Output() io.Writer {
	r.writerOnce.Do(func() { r.writer = &lineWriter{emit: r.output} })
	return r.writer
}

// Logger returns a logger whose records reach the runner's log, tagged with
// the job, occurrence and attempt.
func (r *Run) Logger() *slog.Logger {
	l := r.logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return l.With("job", r.Job, "occurrence", r.OccurrenceID, "attempt", r.Attempt)
}

// flush sends a trailing partial line and stops further output.
func (r *Run) flush() {
	r.writerOnce.Do(func() { r.writer = &lineWriter{emit: r.output} })
	r.writer.close()
}

// Alert is the event an alert run reports.
type Alert struct {
	// Kind is "failure" (a run failed for good), "missed" (an occurrence
	// fell due while no node was running, and its catch-up policy did not run
	// it) or "late" (an occurrence had not started the job's late_after past
	// its due time).
	Kind string `json:"kind"`
	// Job is the job's name.
	Job string `json:"job"`
	// Occurrence is the id of the occurrence the event is about.
	Occurrence string `json:"occurrence"`
	// ScheduledAt is that occurrence's due time, in UTC.
	ScheduledAt time.Time `json:"scheduled_at"`
	// Status is the status of that occurrence's last record ("failed",
	// "abandoned", "missed"); empty for a late one, which has not started.
	Status string `json:"status,omitempty"`
	// Error is that record's error, if any.
	Error string `json:"error,omitempty"`
}

// Result is what a handler reports about a run.
type Result struct {
	// Message is a short human-readable summary.
	Message string
	// Metadata holds small machine-readable facts, e.g. "exit_code".
	Metadata map[string]string
	// Output is a bounded excerpt of the output, typically its tail; it is
	// kept in the job's history.
	Output string
}

// MaxLineLength is the longest output line sent as one; longer lines are
// split, between characters where the line is UTF-8.
const MaxLineLength = 64 << 10

// lineWriter splits written bytes into lines for emit.
type lineWriter struct {
	emit func(string)

	mu     sync.Mutex
	buf    []byte
	closed bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.emit == nil {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(string(bytes.TrimSuffix(w.buf[:i], []byte{'\r'})))
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) >= MaxLineLength {
		n := MaxLineLength
		if len(w.buf) > n {
			// Cut before a character that straddles the limit.
			for i := n; i > MaxLineLength-utf8.UTFMax; i-- {
				if utf8.RuneStart(w.buf[i]) {
					n = i
					break
				}
			}
		}
		w.emit(string(w.buf[:n]))
		w.buf = w.buf[n:]
	}
	if len(w.buf) == 0 {
		w.buf = nil // let a large backing array go
	}
	return len(p), nil
}

func (w *lineWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed && len(w.buf) > 0 && w.emit != nil {
		w.emit(string(w.buf))
	}
	w.buf = nil
	w.closed = true
}
