package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"
)

// The decoders of what Redis returns are fuzzed on two kinds of input: arbitrary replies,
// which must never panic (a node that panics on one odd reply takes its runs down with it),
// and replies written in the format the scripts document, which must be read back as
// written. The scripts are Lua, so the second kind is written here, by hand, from each
// script's header.

// fuzzEpoch is an epoch as lua/lib.lua's guard writes it: "ID SEQ FROM NOW PREVID PREVSEQ".
const fuzzEpoch = "1772900000123456 7 0 1772900000000 - 0"

// FuzzClaimReply feeds lua/claim.lua's reply to parseClaimReply. Whatever it accepts must
// hang together (each claim of the shard asked, its job the part of its id before the last
// '@'), and a reply of one claim, one decided and one stuck occurrence, written as the
// script's header says, must decode to exactly those.
func FuzzClaimReply(f *testing.F) {
	f.Add("1772900000000123 "+fuzzEpoch+"\n1772900001000\nbackup@2026-03-07T16:13:20.000Z\t1\t1772900000000001\t1772900000000\t30000",
		int64(1772900000000123), "ep1", int64(7), int64(1772900001000), true,
		"backup@2026-03-07T16:13:20.000Z", int64(1), int64(1772900000000001), int64(1772900000000), int64(30000),
		"skipped", "job paused", "{cf:default:3}:hist:backup")
	f.Add("1772900000000123 "+fuzzEpoch+"\n\n!skipped\treport@2026-03-07T16:13:20.000Z\tjob paused\n?x@1\tk",
		int64(0), "-", int64(0), int64(0), false, "j@", int64(0), int64(0), int64(0), int64(0), "", "", "")
	f.Add("1 "+fuzzEpoch+"\nNaN\n\t\t\t\t", int64(-1), "e", int64(-1), int64(-1<<53), true,
		"?@", int64(-1), int64(math.MinInt64), int64(1<<53), int64(math.MaxInt64/int64(time.Millisecond)),
		"!", "\u00e9", "")
	f.Fuzz(func(t *testing.T, reply string, nowUS int64, epochID string, seq, head int64, hasHead bool,
		occ string, attempt, token, notBefore, ttl int64, status, reason, faultKey string) {
		q := New(nil, Config{})
		const shard = 5
		out := Claimed{Heads: map[int]time.Time{}}
		if err := q.parseClaimReply(reply, shard, &out); err == nil {
			checkClaimed(t, reply, shard, out)
		}

		// The round trip, on a fresh queue: the guard has not seen this shard yet.
		if !claimFields(epochID, occ, status, reason, faultKey) || !exactInLua(head) || !exactInLua(notBefore) ||
			ttl > math.MaxInt64/int64(time.Millisecond) || ttl < math.MinInt64/int64(time.Millisecond) ||
			!strings.Contains(occ, "@") {
			return
		}
		hs := ""
		if hasHead {
			hs = strconv.FormatInt(head, 10)
		}
		epoch := fmt.Sprintf("%s %d 0 1772900000000 - 0", epochID, seq)
		reply = fmt.Sprintf("%d %s\n%s\n%s\t%d\t%d\t%d\t%d\n!%s\t%s\t%s\n?%s\t%s", nowUS, epoch, hs,
			occ, attempt, token, notBefore, ttl, status, occ, reason, occ, faultKey)
		q = New(nil, Config{})
		got := Claimed{Heads: map[int]time.Time{}}
		if err := q.parseClaimReply(reply, shard, &got); err != nil {
			t.Fatalf("parseClaimReply(%q): %v", reply, err)
		}
		job, _ := jobOf(occ)
		want := Claimed{
			Claims: []Claim{{Occurrence: occ, Job: job, Shard: shard, Attempt: int(attempt), Token: token,
				NotBefore: time.UnixMilli(notBefore), TTL: time.Duration(ttl) * time.Millisecond}},
			Heads:   map[int]time.Time{},
			Decided: []Decided{{Occurrence: occ, Status: Status(status), Reason: reason}},
			Stuck:   []Stuck{{Occurrence: occ, Job: job, Key: faultKey}},
		}
		if at := time.UnixMicro(nowUS); at.After(time.Time{}) {
			want.Now = at
		}
		if hasHead {
			want.Heads[shard] = time.UnixMilli(head)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("parseClaimReply(%q) (-want +got):\n%s", reply, diff)
		}
		if k := q.guard.known(shard); k != epochID+" "+strconv.FormatInt(seq, 10) {
			t.Fatalf("after the reply, the guard knows epoch %q of %q", k, epoch)
		}
	})
}

// checkClaimed checks what parseClaimReply made of reply.
func checkClaimed(t *testing.T, reply string, shard int, out Claimed) {
	t.Helper()
	for _, c := range out.Claims {
		if job, ok := jobOf(c.Occurrence); !ok || c.Job != job || c.Shard != shard {
			t.Fatalf("parseClaimReply(%q): claim %+v", reply, c)
		}
	}
	for s := range out.Heads {
		if s != shard {
			t.Fatalf("parseClaimReply(%q): a head for shard %d", reply, s)
		}
	}
	for _, s := range out.Stuck {
		if job, _ := jobOf(s.Occurrence); s.Job != job {
			t.Fatalf("parseClaimReply(%q): stuck %+v", reply, s)
		}
	}
	if len(out.Failed) > 0 {
		t.Fatalf("parseClaimReply(%q): Failed = %v", reply, out.Failed)
	}
	if n := strings.Count(reply, "\n") - 1; len(out.Claims)+len(out.Decided)+len(out.Stuck) > n {
		t.Fatalf("parseClaimReply(%q): %d claims, %d decided and %d stuck from %d lines", reply, len(out.Claims), len(out.Decided), len(out.Stuck), n)
	}
}

// claimFields reports whether strings can be fields of a claim reply as written: the reply
// separates fields by tabs and lines by newlines, and an epoch's fields by white space.
func claimFields(epochID string, fields ...string) bool {
	if f := strings.Fields(epochID); len(f) != 1 || f[0] != epochID {
		return false
	}
	for _, s := range fields {
		if strings.ContainsAny(s, "\t\n") {
			return false
		}
	}
	return true
}

// exactInLua reports whether ms survives the scripts' numbers, Lua doubles, exactly.
func exactInLua(ms int64) bool { return ms >= -1<<53 && ms <= 1<<53 }

// FuzzEpoch feeds two epochs of one shard to the guard, as two replies would. An epoch is
// taken when it has the six fields of lua/lib.lua's guard, and then the guard sends back
// "ID SEQ" of the newest it saw; a new id is a loss, whose floor is no later than what the
// guard last knew sound.
func FuzzEpoch(f *testing.F) {
	f.Add(fuzzEpoch, "1772900000123456 8 0 1772900000100 - 0")
	f.Add(fuzzEpoch, "1772900009000000 1 1772899999000 1772900009000 1772900000123456 6")
	f.Add(fuzzEpoch, "1772900009000000 1 0 1772900009000 - 0")
	f.Add("a -1 -1 -1 b -1", "a\t9223372036854775807 1 2 b 3")
	f.Add("", " x 1 2 3 y 4 ")
	f.Fuzz(func(t *testing.T, first, second string) {
		g := newGuard(false, time.Minute, "")
		const shard = 3
		e1, now1, err := g.observe(shard, first)
		if err != nil {
			if g.known(shard) != "" {
				t.Fatalf("observe(%q) failed, yet the guard knows %q", first, g.known(shard))
			}
			return
		}
		checkEpoch(t, first, e1, now1)
		if k := g.known(shard); k != e1.id+" "+strconv.FormatInt(e1.seq, 10) {
			t.Fatalf("observe(%q): known = %q", first, k)
		}
		e2, now2, err := g.observe(shard, second)
		if err != nil {
			if k := g.known(shard); k != e1.id+" "+strconv.FormatInt(e1.seq, 10) {
				t.Fatalf("observe(%q) failed, yet the guard now knows %q", second, k)
			}
			return
		}
		checkEpoch(t, second, e2, now2)
		g.mu.Lock()
		loss, lost := g.lost[shard]
		g.mu.Unlock()
		if e2.id == e1.id {
			if k := g.known(shard); k != e1.id+" "+strconv.FormatInt(max(e1.seq, e2.seq), 10) {
				t.Fatalf("observe(%q, then %q): known = %q", first, second, k)
			}
			if lost {
				t.Fatalf("observe(%q, then %q): a loss without a new epoch", first, second)
			}
			return
		}
		if !lost || loss.Floor.After(now1) || (!loss.Restored.IsZero() && loss.Floor.After(loss.Restored)) {
			t.Fatalf("observe(%q, then %q): loss %+v (lost %v), want a floor no later than %v", first, second, loss, lost, now1)
		}
		select {
		case <-g.wake:
		default:
			t.Fatalf("observe(%q, then %q): the loss was not signalled", first, second)
		}
	})
}

// checkEpoch checks the epoch observe read from s, at Redis' clock now.
func checkEpoch(t *testing.T, s string, e epochView, now time.Time) {
	t.Helper()
	f := strings.Fields(s)
	if len(f) != 6 || e.id != f[0] || !sameInt(f[1], e.seq) || !sameInt(f[3], now.UnixMilli()) || !e.good.Equal(now) ||
		!isInt(f[2]) || !isInt(f[5]) {
		t.Fatalf("observe(%q) = %+v at %v", s, e, now)
	}
}

func isInt(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// sameInt reports whether s is the decimal n.
func sameInt(s string, n int64) bool {
	v, err := strconv.ParseInt(s, 10, 64)
	return err == nil && v == n
}

// FuzzScriptReply feeds a script's array reply ("EPOCH", then one value per item; JSON
// here, for readable seeds) to the decoders of the expansion, renewal and completion
// scripts. Whatever they accept must have the shape asked for; and the values of a reply
// written as the scripts write them come back in the caller's order.
func FuzzScriptReply(f *testing.F) {
	f.Add(`["`+fuzzEpoch+`", "1772900060000", "-node-b", ""]`, uint8(3), []byte{0, 1, 2})
	f.Add(`["`+fuzzEpoch+`", 1, 0, 2, -1]`, uint8(4), []byte{3, 1, 0, 2})
	f.Add(`["`+fuzzEpoch+`", 1.5, true, null, [1], {"err": "WRONGTYPE no"}]`, uint8(5), []byte{})
	f.Add(`"`+fuzzEpoch+`"`, uint8(0), []byte{7})
	f.Add(`[]`, uint8(1), []byte{255, 0})
	f.Fuzz(func(t *testing.T, reply string, items uint8, perm []byte) {
		r, ok := replyFromJSON(reply)
		if !ok {
			return
		}
		n := int(items % 8)
		vals, ok := r.([]any)
		q := New(nil, Config{})
		rest, ep, now, err := q.epochReply(1, r)
		if err == nil {
			if !ok || len(rest) != len(vals)-1 || !ep.good.Equal(now) {
				t.Fatalf("epochReply(%#v) = %#v, %+v, %v", r, rest, ep, now)
			}
		}

		jobs := make([]string, n)
		for i := range jobs {
			jobs[i] = "job" + strconv.Itoa(i)
		}
		exp := Expanded{Watermarks: map[string]time.Time{}, Superseded: map[string]string{}}
		if err := New(nil, Config{}).expandReply(1, jobs, r, &exp); err == nil {
			if len(vals) != n+1 || len(exp.Watermarks)+len(exp.Superseded) > n {
				t.Fatalf("expandReply(%#v, %d jobs) = %+v", r, n, exp)
			}
			for j := range exp.Watermarks {
				if _, ok := exp.Superseded[j]; ok {
					t.Fatalf("expandReply(%#v): job %s both has a watermark and is superseded", r, j)
				}
			}
		}

		// Renew and Complete: n items of one shard, in the caller's order of perm.
		idx := map[int][]int{1: order(n, perm)}
		codes, eps, nows, failed, err := New(nil, Config{}).scatter([]any{r}, []error{nil}, []int{1}, idx, n)
		if err == nil {
			if len(codes) != n || len(eps) != n || len(nows) != n || len(failed) != n || len(vals) != n+1 {
				t.Fatalf("scatter(%#v, %d items): %d codes", r, n, len(codes))
			}
			for j, i := range idx[1] {
				if want, _ := vals[j+1].(int64); codes[i] != want || failed[i] != nil {
					t.Fatalf("scatter(%#v): item %d = %d, want %d", r, i, codes[i], want)
				}
			}
		}

		// The round trips: the same number of items, written as the scripts write them.
		epochReply := []any{fuzzEpoch}
		wantExp := Expanded{Watermarks: map[string]time.Time{}, Superseded: map[string]string{}}
		var wantCodes []int64
		for i, j := range jobs {
			b := byte(i)
			if i < len(perm) {
				b = perm[i]
			}
			switch b % 3 {
			case 0:
				ms := int64(b) * 1e10 // never negative: "-" starts a node's name
				epochReply = append(epochReply, strconv.FormatInt(ms, 10))
				wantExp.Watermarks[j] = time.UnixMilli(ms)
			case 1:
				epochReply = append(epochReply, "-node "+string(rune(b)))
				wantExp.Superseded[j] = "node " + string(rune(b))
			default:
				epochReply = append(epochReply, "")
			}
			wantCodes = append(wantCodes, int64(b%4)-1)
		}
		got := Expanded{Watermarks: map[string]time.Time{}, Superseded: map[string]string{}}
		if err := New(nil, Config{}).expandReply(1, jobs, epochReply, &got); err != nil {
			t.Fatalf("expandReply(%#v): %v", epochReply, err)
		}
		if diff := cmp.Diff(wantExp, got); diff != "" {
			t.Fatalf("expandReply(%#v) (-want +got):\n%s", epochReply, diff)
		}
		codeReply := []any{fuzzEpoch}
		for _, i := range idx[1] {
			codeReply = append(codeReply, wantCodes[i])
		}
		codes, _, _, _, err = New(nil, Config{}).scatter([]any{codeReply}, []error{nil}, []int{1}, idx, n)
		if err != nil {
			t.Fatalf("scatter(%#v): %v", codeReply, err)
		}
		if diff := cmp.Diff(wantCodes, codes, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("scatter(%#v) (-want +got):\n%s", codeReply, diff)
		}
	})
}

// order is a permutation of 0..n-1 picked by perm: where each item of a shard's reply goes
// in the caller's order.
func order(n int, perm []byte) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	for i := range out {
		if i < len(perm) {
			j := int(perm[i]) % n
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// replyFromJSON turns JSON into a reply as go-redis hands a script's over: integers are
// int64, other numbers float64, {"err": "..."} an error reply inside an array, another
// object a RESP3 map.
func replyFromJSON(s string) (any, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return fromJSON(v), true
}

func fromJSON(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = fromJSON(e)
		}
		return out
	case map[string]any:
		if e, ok := v["err"].(string); ok && len(v) == 1 {
			return fakeReplyError(e)
		}
		out := make(map[any]any, len(v))
		for k, e := range v {
			out[k] = fromJSON(e)
		}
		return out
	}
	return v
}

// fakeReplyError is an error reply as go-redis makes one (it implements redis.Error).
type fakeReplyError string

func (e fakeReplyError) Error() string { return string(e) }
func (fakeReplyError) RedisError()     {}

// FuzzReplyError feeds error replies to replyError: an error reply is a *ReplyError whose
// Kind is its first word and whose message is Redis' own; go-redis' own conditions and
// errors that are no reply pass through.
func FuzzReplyError(f *testing.F) {
	f.Add("WRONGTYPE Operation against a key holding the wrong kind of value", true)
	f.Add("redis: nil", true)
	f.Add("dial tcp: connection refused", false)
	f.Add("", true)
	f.Fuzz(func(t *testing.T, msg string, reply bool) {
		var in error = errors.New(msg)
		if reply {
			in = fakeReplyError(msg)
		}
		wrapped := fmt.Errorf("call: %w", in)
		got := replyError(wrapped)
		var r *ReplyError
		isReply := errors.As(got, &r)
		if want := reply && !strings.HasPrefix(msg, "redis: "); isReply != want {
			t.Fatalf("replyError(%q, a reply: %v) = %#v", msg, reply, got)
		}
		if !errors.Is(got, in) {
			t.Fatalf("replyError(%q) = %v, which does not wrap the client's error", msg, got)
		}
		if !isReply {
			if got != wrapped {
				t.Fatalf("replyError(%q) = %v, want it unchanged", msg, got)
			}
			return
		}
		if kind, _, _ := strings.Cut(msg, " "); r.Kind != kind || r.Error() != wrapped.Error() {
			t.Fatalf("replyError(%q) = kind %q, %q", msg, r.Kind, r.Error())
		}
	})
}

// FuzzStoredJSON feeds what the queue keeps as JSON (run records, nodes, pauses) to their
// decoders. What decodes must encode as the queue writes it and decode to the same again;
// seeds include each as written.
func FuzzStoredJSON(f *testing.F) {
	at := time.Date(2026, 3, 8, 7, 0, 0, 123e6, time.UTC)
	for _, v := range []any{
		Record{Occurrence: "backup@2026-03-08T07:00:00.000Z", Job: "backup", Node: "n1", Attempt: 2, FencingToken: 1772900000000001,
			ScheduledAt: at, StartedAt: at, EndedAt: at.Add(time.Second), Status: StatusFailed, Error: "exit status 1",
			Message: "exit 1", Output: "line\n", Metadata: map[string]string{"exit_code": "1"}},
		Node{Name: "n1", Version: "v1.2.3", JobSetHash: "ab12", Jobs: 3, Started: at},
		Pause{Note: "maintenance", By: "ops@host", At: at},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "1772900000000")
	}
	f.Add(`{"scheduled_at":"0000-01-01T00:00:00+23:59","started_at":null,"metadata":{}}`, "-9223372036854775808")
	f.Add(`{"at":"9999-12-31T23:59:59.999999999-23:59"}`, "x")
	f.Fuzz(func(t *testing.T, raw, seen string) {
		if rec, err := decodeRecord(raw); err == nil {
			again := roundTrip(t, raw, rec, decodeRecord)
			if diff := cmp.Diff(rec, again, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("record %q, encoded and decoded again (-first +again):\n%s", raw, diff)
			}
		}
		if p, err := decodePause(raw); err == nil {
			again := roundTrip(t, raw, p, decodePause)
			if diff := cmp.Diff(p, again); diff != "" {
				t.Fatalf("pause %q, encoded and decoded again (-first +again):\n%s", raw, diff)
			}
		}
		now := time.UnixMilli(1772900000000)
		if n, err := decodeNode(raw, seen, now); err == nil {
			ms, err := strconv.ParseInt(seen, 10, 64)
			if err != nil && (!n.Seen.IsZero() || n.Age != 0) || err == nil && (!n.Seen.Equal(time.UnixMilli(ms)) || n.Age != now.Sub(n.Seen)) {
				t.Fatalf("node %q seen %q: Seen %v, Age %v", raw, seen, n.Seen, n.Age)
			}
			again := roundTrip(t, raw, n.Node, func(s string) (Node, error) {
				n, err := decodeNode(s, "", now)
				return n.Node, err
			})
			if diff := cmp.Diff(n.Node, again); diff != "" {
				t.Fatalf("node %q, encoded and decoded again (-first +again):\n%s", raw, diff)
			}
		}
	})
}

// roundTrip encodes v, which decode made of raw, as the queue writes it, and decodes that.
// A time that Go's JSON decoding takes but its encoding refuses (an offset of +24:00, a
// year out of 0-9999) is the one exception, left as it is: cronfleet never writes one, and
// refusing it in the decoders would make one bad node's entry hide all nodes from the
// engine (testdata/fuzz/FuzzStoredJSON/time-offset-24h).
func roundTrip[T any](t *testing.T, raw string, v T, decode func(string) (T, error)) T {
	t.Helper()
	b, err := json.Marshal(v)
	var me *json.MarshalerError
	if errors.As(err, &me) && me.Type == reflect.TypeFor[time.Time]() {
		return v
	}
	if err != nil {
		t.Fatalf("%q decodes to %+v, which does not encode: %v", raw, v, err)
	}
	if bytes.ContainsAny(b, "\n\r") {
		// The claim script's reply is line-based, and pauses are read by it.
		t.Fatalf("%q encodes over several lines: %s", raw, b)
	}
	again, err := decode(string(b))
	if err != nil {
		t.Fatalf("%q decodes to %+v, encoded as %s, which does not decode: %v", raw, v, b, err)
	}
	return again
}

// FuzzStreamEntries: the decoders of the two streams' entries (a run's output, the audit
// log) never panic, and what they accept carries the time of the entry's id.
func FuzzStreamEntries(f *testing.F) {
	f.Add("1772900000123-0", "2", "a line", "", "", `{"by":"ops@host","via":"cli","action":"pause","job":"backup","note":"x"}`)
	f.Add("1772900000123-7", "1", "", "failed", "1", `{}`)
	f.Add("x-1", "one", "", "", "", `[`)
	f.Add("-9223372036854775808-0", "-1", "\x00", "succeeded", "0", `{"at":"2026-01-01T00:00:00Z"}`)
	// The first millisecond of the year 10000, which JSON cannot write (found by fuzzing).
	f.Add("253402300800000-0", "1", "", "", "", `{}`)
	f.Fuzz(func(t *testing.T, id, attempt, line, end, final, audit string) {
		values := map[string]any{"a": attempt}
		if line != "" {
			values["l"] = line
		}
		if end != "" {
			values["e"], values["f"] = end, final
		}
		ms, _, _ := strings.Cut(id, "-")
		if l, err := outputLine(redis.XMessage{ID: id, Values: values}); err == nil {
			if l.At.UnixMilli() != mustParse(t, ms) {
				t.Fatalf("entry %q: at %v, want its id's time", id, l.At)
			}
			if l.Final && l.End == "" {
				t.Fatalf("entry %q: final without an end", id)
			}
		}
		if e, err := decodeAudit(id, audit); err == nil {
			if e.At.UnixMilli() != mustParse(t, ms) {
				t.Fatalf("audit entry %q: at %v, want its id's time", id, e.At)
			}
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			again, err := decodeAudit(id, string(b))
			if err != nil || !again.At.Equal(e.At) || again.By != e.By || again.Action != e.Action || again.Note != e.Note {
				t.Fatalf("audit entry %q, encoded and decoded again: %+v, %v; want %+v", audit, again, err, e)
			}
		}
		if _, err := decodeAudit(id, 42); err == nil {
			t.Fatal("an audit entry whose field is not a string was accepted")
		}
	})
}

// mustParse is ms as the decoders read it; they accepted it, so it parses.
func mustParse(t *testing.T, ms string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		t.Fatalf("a decoder accepted the id time %q: %v", ms, err)
	}
	return n
}
