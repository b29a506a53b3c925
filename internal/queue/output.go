package queue

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/output.lua
var outputSrc string

// Output is one batch of a run's output lines, for AppendOutput.
type Output struct {
	// Occurrence is the run's occurrence id; its job (the part before the last '@') decides
	// the shard, so the stream shares the tag of the occurrence's other keys.
	Occurrence string
	// Attempt is the claim that produced the lines. The attempts of an occurrence write to
	// one stream, so a reader follows a retry without knowing it happened.
	Attempt int
	// Batch numbers the attempt's batches, from 1, each once: a re-sent call of the same
	// batch adds nothing.
	Batch int
	// Lines are the lines, in order; each is cut to OutputLineBytes.
	Lines []string
	// End, when not empty, marks the attempt's end, after Lines, with the status its run
	// record will have.
	End Status
	// Final, with End, says that no other attempt follows: readers stop at this end.
	Final bool
}

// OutputLine is one entry of an occurrence's output stream: a line of output, or the end of
// an attempt.
type OutputLine struct {
	// Attempt is the claim that wrote it.
	Attempt int
	// At is when the line reached Redis, by Redis' clock: a little after the handler wrote
	// it, because the engine sends lines in batches.
	At time.Time
	// Text is the line, without its newline; empty for an end.
	Text string
	// End, when not empty, makes this entry the end of Attempt, with its status.
	End Status
	// Final, with End, says that no other attempt follows.
	Final bool
}

// OutputChunk is what one ReadOutput call returns.
type OutputChunk struct {
	// Lines are the entries after the cursor passed in, oldest first.
	Lines []OutputLine
	// Cursor is where the next call continues: the id of the last entry returned, or the
	// cursor passed in when there was none.
	Cursor string
	// End says the occurrence's output is complete: its last attempt ended, or it is no
	// longer scheduled (it finished, possibly without any output, or it is unknown). A
	// reader stops here; the run's record in its job's history has the outcome.
	End bool
}

// Bounds of the output streams, when Config leaves them zero.
const (
	defaultOutputLines     = 1000
	defaultOutputLineBytes = 1 << 10
	defaultOutputRetention = time.Hour
	// outputLiveTTL is how long a stream lives after its last line while no end was written.
	// It only matters when the holder died before writing the end (or a run stayed silent
	// that long): the stream must not outlive it forever.
	outputLiveTTL = 24 * time.Hour
	// maxOutputBlock bounds how long one ReadOutput call waits for new lines: a waiting
	// read holds one of the client's connections.
	maxOutputBlock = 30 * time.Second
)

func (q *Queue) outputLines() int { return positive(q.cfg.OutputLines, defaultOutputLines) }

func (q *Queue) outputLineBytes() int {
	return positive(q.cfg.OutputLineBytes, defaultOutputLineBytes)
}

func (q *Queue) outputRetention() time.Duration {
	if q.cfg.OutputRetention > 0 {
		return q.cfg.OutputRetention
	}
	return defaultOutputRetention
}

func positive(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// AppendOutput adds a batch of a run's output to its occurrence's stream, in one round
// trip, and renews the stream's expiry: OutputRetention after an end, a day otherwise.
func (q *Queue) AppendOutput(ctx context.Context, o Output) error {
	job, ok := jobOf(o.Occurrence)
	if !ok {
		return fmt.Errorf("queue: append output: %q is not an occurrence id", o.Occurrence)
	}
	limit := q.outputLineBytes()
	args := make([]any, 0, 7+len(o.Lines))
	final := "0"
	if o.Final {
		final = "1"
	}
	args = append(args, q.outputLines(), outputLiveTTL.Milliseconds(), q.outputRetention().Milliseconds(),
		o.Attempt, o.Batch, string(o.End), final)
	for _, l := range o.Lines {
		args = append(args, cutLine(l, limit))
	}
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	key := q.keys(ShardOf(job)).output(o.Occurrence)
	if err := q.output.Run(ctx, q.rdb, []string{key}, args...).Err(); err != nil {
		return fmt.Errorf("queue: append output %s: %w", o.Occurrence, replyError(err))
	}
	return nil
}

// ReadOutput returns the entries of occurrence's output stream after the cursor after ("" for
// the beginning). When there are none yet and the occurrence is still scheduled, it waits up
// to block (at most 30s) for some. A run that wrote no output has no stream: End comes from
// the agenda, which no longer has an occurrence once it finished.
func (q *Queue) ReadOutput(ctx context.Context, occurrence, after string, block time.Duration) (OutputChunk, error) {
	job, ok := jobOf(occurrence)
	if !ok {
		return OutputChunk{}, fmt.Errorf("queue: read output: %q is not an occurrence id", occurrence)
	}
	if after == "" {
		after = "0-0"
	}
	k := q.keys(ShardOf(job))
	key := k.output(occurrence)
	count := int64(q.outputLines())

	callCtx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	// The agenda is asked before the stream, on one connection: if the occurrence had left
	// the agenda, its run's lines were written before, so the read that follows sees them
	// all (the engine writes a run's last lines before its completion).
	var inAgenda, waiting *redis.FloatCmd
	var read *redis.XStreamSliceCmd
	_, err := q.rdb.Pipelined(callCtx, func(p redis.Pipeliner) error {
		inAgenda = p.ZScore(callCtx, k.agenda(), occurrence)
		waiting = p.ZScore(callCtx, k.waitPrefix()+job, occurrence)
		read = p.XRead(callCtx, &redis.XReadArgs{Streams: []string{key, after}, Count: count, Block: -1})
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return OutputChunk{}, fmt.Errorf("queue: read output %s: %w", occurrence, replyError(err))
	}
	for _, c := range []*redis.FloatCmd{inAgenda, waiting} {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return OutputChunk{}, fmt.Errorf("queue: read output %s: %w", occurrence, replyError(err))
		}
	}
	scheduled := inAgenda.Err() == nil || waiting.Err() == nil
	chunk, err := outputChunk(read, after)
	if err != nil {
		return OutputChunk{}, fmt.Errorf("queue: read output %s: %w", occurrence, err)
	}
	if chunk.End || !scheduled {
		// Not scheduled any more: everything was written, but a full page may have more.
		chunk.End = chunk.End || len(chunk.Lines) < int(count)
		return chunk, nil
	}
	if len(chunk.Lines) > 0 || block <= 0 {
		return chunk, nil
	}

	block = min(block, maxOutputBlock)
	blockCtx, cancel := context.WithTimeout(ctx, block+q.cfg.CallTimeout)
	defer cancel()
	read = q.rdb.XRead(blockCtx, &redis.XReadArgs{Streams: []string{key, after}, Count: count, Block: block})
	chunk, err = outputChunk(read, after)
	if err != nil {
		return OutputChunk{}, fmt.Errorf("queue: read output %s: %w", occurrence, err)
	}
	return chunk, nil
}

// outputChunk turns an XREAD reply into a chunk, not yet knowing whether the occurrence
// still runs.
func outputChunk(read *redis.XStreamSliceCmd, after string) (OutputChunk, error) {
	chunk := OutputChunk{Cursor: after}
	streams, err := read.Result()
	if errors.Is(err, redis.Nil) {
		return chunk, nil // nothing after the cursor, or no stream
	}
	if err != nil {
		return chunk, replyError(err)
	}
	for _, s := range streams {
		for _, m := range s.Messages {
			l, err := outputLine(m)
			if err != nil {
				return chunk, err
			}
			chunk.Lines = append(chunk.Lines, l)
			chunk.Cursor = m.ID
			chunk.End = l.Final
		}
	}
	return chunk, nil
}

// outputLine decodes one stream entry (see lua/output.lua).
func outputLine(m redis.XMessage) (OutputLine, error) {
	var l OutputLine
	at, err := streamIDTime(m.ID)
	if err != nil {
		return l, fmt.Errorf("entry %s: %w", m.ID, err)
	}
	l.At = at
	a, _ := m.Values["a"].(string)
	if l.Attempt, err = strconv.Atoi(a); err != nil {
		return l, fmt.Errorf("entry %s: bad attempt %q", m.ID, a)
	}
	l.Text, _ = m.Values["l"].(string)
	e, _ := m.Values["e"].(string)
	l.End = Status(e)
	l.Final = l.End != "" && m.Values["f"] == "1"
	return l, nil
}

// streamIDTime is the time in a stream entry's id: Redis' clock in milliseconds, before
// the sequence. Redis writes ids as unsigned numbers; one beyond the year 9999 can only be
// written by hand, and is refused here because JSON cannot carry its time, so the API's
// reply would fail on it.
func streamIDTime(id string) (time.Time, error) {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseUint(ms, 10, 64)
	if err != nil || n >= uint64(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()) {
		return time.Time{}, fmt.Errorf("id %q is not a stream id of a time up to the year 9999", id)
	}
	return time.UnixMilli(int64(n)).UTC(), nil
}

// cutLine cuts line to at most n bytes, on a rune boundary, marking the cut with "…".
func cutLine(line string, n int) string {
	if len(line) <= n {
		return line
	}
	for n > 0 && !utf8.RuneStart(line[n]) {
		n--
	}
	return line[:n] + "…"
}
