package queue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The lost-state guard. Redis can come back from a fault holding less than it acknowledged:
// restarted without persistence, restored from an older snapshot, failed over to a replica
// that missed writes, flushed. Its scripts would then hand out leases that are still held,
// replay finished occurrences and forget what was planned. Each shard therefore has an epoch
// (lua/lib.lua, guard): an id and a counter every state-changing script bumps. The queue
// remembers, per shard, the epoch it was last answered, and sends it with every call; the
// script that finds the epoch gone or behind begins a new one and holds claims for a lease,
// and every node learns of the loss from the new id. A node that learns of it:
//
//   - writes back what it completed recently (Recover): an occurrence it finished does not
//     run again from a restored snapshot, and one waiting for a retry is not forgotten;
//   - has its engine plan its jobs again from the last instant it knew the shard sound (the
//     Loss's Floor), so what Redis forgot is added back (lua/expand.lua);
//   - takes back the leases of its runs in flight at its next renewal (lua/renew.lua).
//
// What falls due meanwhile is run by the jobs' catch-up policies once the hold ends.

// Loss is what this node learned of Redis losing the state of one shard.
type Loss struct {
	Shard int
	// Floor is the last instant, on Redis' clock, at which this node knew the shard's state
	// sound (or when the state Redis came back with was written, if earlier): its jobs are
	// planned again from there.
	Floor time.Time
	// Restored is when the state Redis came back with was last written (a snapshot, a
	// replica's last write), or zero when Redis came back empty.
	Restored time.Time
	// restored is the epoch of that state: which of this node's writes it holds.
	restored epochView
}

// recentKeep and recentMax bound what a node remembers of its completions, to write back
// after a loss: a snapshot older than that, or completions of a node that died, may be run
// again. README documents both.
const (
	recentKeep = 5 * time.Minute
	recentMax  = 50000
)

type guard struct {
	off  bool
	hold time.Duration
	// node names this node to the scripts, which keep each node's own count of its calls
	// apart (lua/lib.lua): a lost write shows in it even after other nodes' calls brought the
	// shard's count back up. Empty for callers that are not nodes (the fleet commands).
	node string

	mu     sync.Mutex
	epochs [Shards]epochView
	lost   map[int]Loss // learned, not yet recovered
	recent recentRing
	wake   chan struct{}
}

type epochView struct {
	id   string
	seq  int64
	good time.Time // Redis' clock in the last reply of this epoch
}

// holds says whether the state of epoch e holds a write answered in epoch id at seq.
func (e epochView) holds(id string, seq int64) bool { return e.id == id && seq <= e.seq }

// completion is one completion this node had accepted, as Recover writes it back.
type completion struct {
	shard   int
	claim   Claim
	retryAt time.Time // zero: done
	record  string
	at      time.Time // Redis' clock when it was accepted
	epoch   epochView // the shard's epoch in the reply that accepted it
}

func newGuard(off bool, hold time.Duration, node string) *guard {
	return &guard{off: off, hold: hold, node: node, lost: map[int]Loss{}, wake: make(chan struct{}, 1)}
}

// known is the epoch of shard as this node knows it, for the scripts.
func (g *guard) known(shard int) string {
	if g.off {
		return ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.epochs[shard]
	switch {
	case g.node == "" && e.id == "":
		return ""
	case g.node == "":
		return e.id + " " + strconv.FormatInt(e.seq, 10)
	case e.id == "":
		return "- 0 " + g.node
	}
	return e.id + " " + strconv.FormatInt(e.seq, 10) + " " + g.node
}

// observe takes in the epoch "ID SEQ FROM NOW PREVID PREVSEQ" a script of shard answered,
// and returns it, with Redis' clock at that point.
func (g *guard) observe(shard int, reply string) (epochView, time.Time, error) {
	f := strings.Fields(reply)
	if len(f) != 6 {
		return epochView{}, time.Time{}, fmt.Errorf("malformed epoch %q", reply)
	}
	seq, err1 := strconv.ParseInt(f[1], 10, 64)
	from, err2 := strconv.ParseInt(f[2], 10, 64)
	nowMS, err3 := strconv.ParseInt(f[3], 10, 64)
	prevSeq, err4 := strconv.ParseInt(f[5], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return epochView{}, time.Time{}, fmt.Errorf("malformed epoch %q", reply)
	}
	now := time.UnixMilli(nowMS)
	seen := epochView{id: f[0], seq: seq, good: now}
	if g.off {
		return seen, now, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	e := &g.epochs[shard]
	switch {
	case e.id == f[0]:
		e.seq = max(e.seq, seq)
		if now.After(e.good) {
			e.good = now
		}
		return seen, now, nil
	case e.id != "":
		l := Loss{Shard: shard, Floor: e.good, restored: epochView{id: f[4], seq: prevSeq}}
		if from > 0 {
			l.Restored = time.UnixMilli(from)
			if l.Restored.Before(l.Floor) {
				l.Floor = l.Restored
			}
		}
		if prev, ok := g.lost[shard]; ok && prev.Floor.Before(l.Floor) {
			l.Floor = prev.Floor // two losses before recovery: the earlier floor holds
		}
		g.lost[shard] = l
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
	*e = seen
	return seen, now, nil
}

// remember keeps an accepted completion, to write back after a loss.
func (g *guard) remember(c completion) {
	if g.off {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recent.push(c, recentMax)
	for o, ok := g.recent.oldest(); ok && c.at.Sub(o.at) > recentKeep; o, ok = g.recent.oldest() {
		g.recent.dropOldest()
	}
}

// recentRing holds the completions a node remembers, oldest first, in a buffer that grows
// to the most it may hold and then takes each new one in the place of the oldest. A slice
// appended to at one end and cut at the other reallocated and copied itself every few
// seconds at thousands of completions a second, a good part of what the node allocated.
type recentRing struct {
	buf   []completion
	start int // the oldest's index in buf
	n     int
}

// push adds c as the newest, in the place of the oldest once the ring holds max.
func (r *recentRing) push(c completion, max int) {
	if r.n == len(r.buf) && len(r.buf) < max {
		grown := make([]completion, min(max, 2*len(r.buf)+16))
		r.n = copy(grown, r.buf[r.start:])
		r.n += copy(grown[r.n:], r.buf[:r.start])
		r.buf, r.start = grown, 0
	}
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = c
		r.n++
		return
	}
	r.buf[r.start] = c
	r.start = (r.start + 1) % len(r.buf)
}

// oldest returns the oldest completion, if any.
func (r *recentRing) oldest() (completion, bool) {
	if r.n == 0 {
		return completion{}, false
	}
	return r.buf[r.start], true
}

// dropOldest forgets the oldest completion, and its record.
func (r *recentRing) dropOldest() {
	if r.n == 0 {
		return
	}
	r.buf[r.start] = completion{}
	r.start = (r.start + 1) % len(r.buf)
	r.n--
}

// all yields the completions, oldest first, with their order.
func (r *recentRing) all(yield func(int, completion) bool) {
	for i := range r.n {
		if !yield(i, r.buf[(r.start+i)%len(r.buf)]) {
			return
		}
	}
}

// Lost is signalled when this node learns that Redis lost the state of a shard; the
// engine then calls Recover.
func (q *Queue) Lost() <-chan struct{} { return q.guard.wake }

// Recover writes back, for every shard whose state Redis lost since the last call, the
// completions this node made there since the state Redis came back with (or all it
// remembers, when Redis came back empty), and returns the losses, for the caller to plan
// the shards' jobs again from each Loss's Floor. On error the losses are kept for the next
// call.
func (q *Queue) Recover(ctx context.Context) ([]Loss, error) {
	g := q.guard
	g.mu.Lock()
	if len(g.lost) == 0 {
		g.mu.Unlock()
		return nil, nil
	}
	losses := make([]Loss, 0, len(g.lost))
	for _, l := range g.lost {
		losses = append(losses, l)
	}
	clear(g.lost)
	// The newest completion of each occurrence is the one to write back.
	latest := map[string]int{}
	for i, c := range g.recent.all {
		latest[c.claim.Occurrence] = i
	}
	var redo []completion
	for i, c := range g.recent.all {
		if latest[c.claim.Occurrence] != i {
			continue
		}
		for _, l := range losses {
			if l.Shard == c.shard && !l.restored.holds(c.epoch.id, c.epoch.seq) {
				redo = append(redo, c)
			}
		}
	}
	g.mu.Unlock()

	if err := q.redo(ctx, redo); err != nil {
		g.mu.Lock()
		for _, l := range losses {
			if prev, ok := g.lost[l.Shard]; !ok || l.Floor.Before(prev.Floor) {
				g.lost[l.Shard] = l
			}
		}
		g.mu.Unlock()
		return nil, fmt.Errorf("queue: recover: %w", err)
	}
	return losses, nil
}

// redoBatch bounds the completions one script call writes back.
const redoBatch = 256

func (q *Queue) redo(ctx context.Context, cs []completion) error {
	byShard := map[int][]completion{}
	for _, c := range cs {
		byShard[c.shard] = append(byShard[c.shard], c)
	}
	var calls []call
	var shards []int
	for s, list := range byShard {
		for len(list) > 0 {
			n := min(len(list), redoBatch)
			args := q.completeArgs(s)
			var occs []string
			for _, c := range list[:n] {
				occs = append(occs, c.claim.Occurrence)
				action, at := "redo", int64(0)
				if !c.retryAt.IsZero() {
					action, at = "reretry", c.retryAt.UnixMilli()
				}
				args = append(args, c.claim.Occurrence, c.claim.Job, strconv.FormatInt(c.claim.Token, 10),
					strconv.Itoa(c.claim.Attempt), action, at, c.record, "", "")
			}
			calls = append(calls, q.completeCall(s, args, occs))
			shards = append(shards, s)
			list = list[n:]
		}
	}
	res, err := q.evalAll(ctx, calls)
	if err != nil {
		return err
	}
	for i, r := range res {
		if _, _, _, err := q.epochReply(shards[i], r); err != nil {
			return err
		}
	}
	return nil
}

// epochReply splits a script's array reply into the guard's epoch, which it observes and
// returns, and the rest; it returns Redis' clock at the reply.
func (q *Queue) epochReply(shard int, r any) ([]any, epochView, time.Time, error) {
	vals, ok := r.([]any)
	if !ok || len(vals) == 0 {
		return nil, epochView{}, time.Time{}, fmt.Errorf("unexpected reply %v", r)
	}
	s, ok := vals[0].(string)
	if !ok {
		return nil, epochView{}, time.Time{}, fmt.Errorf("unexpected reply %v", r)
	}
	ep, now, err := q.guard.observe(shard, s)
	if err != nil {
		return nil, epochView{}, time.Time{}, err
	}
	return vals[1:], ep, now, nil
}
