package engine

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/workers"
)

// heads is the dispatcher's knowledge of when each shard next has something due.
type heads struct {
	mu sync.Mutex
	m  map[int]time.Time // absent: nothing known
	// lowered counts the lowerings, and says per shard which was its last: a claim's
	// reply read Redis before a lowering that came after its call was sent, and must not
	// undo it (the expander adds occurrences while a claim is in flight).
	n       uint64
	lowered map[int]uint64
}

func newHeads() *heads { return &heads{m: map[int]time.Time{}, lowered: map[int]uint64{}} }

// mark returns the count of lowerings so far, for set.
func (h *heads) mark() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// lower records that shard has an entry due at t, if that is earlier than known.
func (h *heads) lower(shard int, t time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, ok := h.m[shard]; ok && !t.Before(cur) {
		return false
	}
	h.m[shard] = t
	h.n++
	h.lowered[shard] = h.n
	return true
}

// set records what Redis said of shard, in the reply to a call sent when mark returned
// since: its head is at t, or (!ok) it is empty. A head lowered after that call was sent
// stays, unless t is earlier still.
func (h *heads) set(shard int, t time.Time, ok bool, since uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lowered[shard] > since {
		if cur, has := h.m[shard]; ok && (!has || t.Before(cur)) {
			h.m[shard] = t
		}
		return
	}
	if ok {
		h.m[shard] = t
	} else {
		delete(h.m, shard)
	}
}

// due returns the shards whose head is at or before now, and the earliest head after now.
func (h *heads) due(shards []int, now time.Time) (due []int, next time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range shards {
		t, ok := h.m[s]
		switch {
		case !ok:
		case !t.After(now):
			due = append(due, s)
		case next.IsZero() || t.Before(next):
			next = t
		}
	}
	return due, next
}

// notify wakes the dispatcher: a head moved earlier, or a slot came free.
func (e *Engine) notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// shareYield is how long a node that took its fair share of a burst lets the other nodes
// claim theirs before it asks again for what they left: long enough for nodes that woke for
// the same head to have called, short enough that a burst whose other nodes are gone is
// taken within the claim-ahead, in at most one call per live node.
func (e *Engine) shareYield() time.Duration {
	return min(max(e.cfg.ClaimAhead/(2*maxShareRounds), 5*time.Millisecond), 50*time.Millisecond)
}

// maxShareRounds is how many calls a node that finds itself alone for a burst makes before
// it takes the rest (lua/claim.lua presumes one more node absent per call), for a fleet of
// this many nodes within the claim-ahead.
const maxShareRounds = 4

// maxClaimBatch bounds the occurrences one shard's claim script takes per call: the script
// holds up Redis while it runs, and a shard that gave a full batch is asked again at once.
const maxClaimBatch = 64

// A shard's claim call costs Redis a good deal whatever it takes (the script's set-up, its
// guard and policy reads, its reply), so a node whose slots are mostly taken claims in
// batches instead of one call per slot freed: with fewer than claimFloor slots free it waits
// up to claimGather for more runs to end, and with fewer than half its slots free it asks
// each shard for at least minClaimShare occurrences, some shards at a time, in turn
// (inTurn). A node with room to spare claims at once from every due shard, as before.
const (
	claimGather   = 5 * time.Millisecond
	minClaimShare = 16
)

// claimFloor is how many free slots make a batch worth a claim without waiting.
func (e *Engine) claimFloor() int { return max(1, min(maxClaimBatch, cap(e.slots)/8)) }

// dispatcher claims due occurrences and starts their runs until ctx is done.
func (e *Engine) dispatcher(ctx, runCtx context.Context, runs *workers.Pool) {
	var lastPoll time.Time  // long ago: ask every shard at start, they may hold due occurrences
	var gathering time.Time // since when too few slots were free to claim a batch
	last := -1              // the last shard asked when only some were (inTurn)
	bo := newBackoff()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ctx.Err() == nil {
		shards := e.jobs.Load().shards
		due, next := e.heads.due(shards, e.clock.now().Add(e.cfg.ClaimAhead))
		poll := time.Since(lastPoll) >= e.cfg.IdlePoll
		if poll {
			due = shards
		}
		free := cap(e.slots) - len(e.slots)
		gather := time.Duration(0) // how much longer to wait for slots before claiming
		if len(due) > 0 && free > 0 && free < e.claimFloor() && !poll {
			if gathering.IsZero() {
				gathering = time.Now()
			}
			gather = claimGather - time.Since(gathering)
		} else {
			gathering = time.Time{}
		}
		if len(due) > 0 && free > 0 && gather <= 0 {
			if poll {
				lastPoll = time.Now()
			}
			// A poll asks every shard it has slots for: each must hear from the node (see
			// queue.Config.Away). So does a node with room to spare, and one with priorities.
			spread := poll || free >= cap(e.slots)/2 || len(e.jobs.Load().prios) > 0
			due, last = inTurn(due, free, last, spread)
			claimed, sent, err := e.claim(ctx, due, free)
			if err != nil {
				if !e.retry(ctx, "claim", err, bo) {
					return
				}
				continue
			}
			e.outages.answered()
			bo.Reset()
			for _, c := range claimed {
				// Never early: from startAt on, Redis' clock is surely past NotBefore (see
				// redisClock), whatever this node's own clock says.
				startAt := e.clock.startAt(c.NotBefore)
				e.slots <- struct{}{}
				runs.Go(func() {
					defer func() { <-e.slots; e.notify() }()
					e.execute(runCtx, c, sent.mono, startAt)
				})
			}
			continue
		}
		if poll && free == 0 {
			// With every slot taken nothing can be claimed, whatever is due: a run that
			// ends frees its slot and wakes the dispatcher. The shards still hear from
			// this node, or what falls due meanwhile would look missed by a fleet that was
			// away (see queue.Config.Away).
			lastPoll = time.Now()
			if _, err := e.agenda.ClaimPlaced(ctx, shards, 0, 0, e.clock.now().Add(e.agenda.CallTimeout()), nil, queue.Placement{}); err != nil {
				e.log.Debug("claim call while every slot is taken failed", "err", err)
			}
		}
		wait := e.cfg.IdlePoll - time.Since(lastPoll)
		if !next.IsZero() && free > 0 {
			wait = min(wait, e.clock.until(next)-e.cfg.ClaimAhead)
		}
		if gather > 0 {
			wait = min(wait, gather) // a run that ends meanwhile wakes it sooner
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-e.wake:
			timer.Stop()
		}
	}
}

// inTurn returns which of the due shards to ask with free slots, and the last of them. It
// asks every due shard when spread, else as many as give each at least minClaimShare; never
// more than free, or a shard would be asked for nothing. When it asks only some, it starts
// with the first due shard after last, in shard order, so every due shard has its turn.
func inTurn(due []int, free, last int, spread bool) ([]int, int) {
	k := len(due)
	if !spread {
		k = max(1, free/minClaimShare)
	}
	k = min(k, free)
	if k >= len(due) {
		return due, last
	}
	order := slices.Sorted(slices.Values(due)) // due may be the job set's own list
	start, _ := slices.BinarySearch(order, last+1)
	out := make([]int, 0, k)
	for i := range k {
		out = append(out, order[(start+i)%len(order)])
	}
	return out, out[k-1]
}

// claim claims what is due in shards, at most free occurrences in all, and learns from the
// reply when each shard is next worth asking. sent was taken just before the call: the
// claims' leases count from sent.mono, as Redis set their TTLs after it.
func (e *Engine) claim(ctx context.Context, shards []int, free int) (claimed []queue.Claim, sent stamp, err error) {
	// Never claim more than can start at once: a claim waiting for a slot would let its
	// lease run out while nobody renews it. With priorities every shard is asked, and the
	// queue shares free among them by rank (Placement.Total): the first shards alone could
	// hold only low priorities while another holds high ones.
	js := e.jobs.Load()
	if len(js.prios) > 0 {
		// Ranked across every shard of the job set, not only those this node believes
		// due: one it left for the others a moment (a fair share) may hold the highest.
		shards = js.shards
	}
	per := min(maxClaimBatch, free/len(shards))
	if len(js.prios) > 0 {
		per = min(maxClaimBatch, free) // each shard's most; Total bounds the sum
	}
	expected := e.expectedDue(shards)
	sent = e.clock.stamp()
	since := e.heads.mark()
	var yield []string
	if y := e.yield.Load(); y != nil {
		yield = *y
	}
	place := queue.Placement{Nodes: int(e.live.Load()), Free: float64(free) / float64(cap(e.slots)), Window: e.cfg.ClaimAhead + 4*e.shareYield()}
	if e.cfg.NoFairShare {
		place = queue.Placement{}
	}
	place.Limits, place.Priorities, place.Ineligible = js.limits, js.prios, js.ineligible
	if u := e.unplaced.Load(); u != nil {
		place.Unplaced = *u
	}
	if len(js.prios) > 0 {
		place.Total = free
	}
	res, err := e.agenda.ClaimPlaced(ctx, shards, per, e.cfg.ClaimAhead, e.clock.now().Add(e.agenda.CallTimeout()), yield, place)
	if err != nil {
		return nil, sent, err
	}
	if !res.Now.IsZero() { // some shard answered
		e.clock.observe(sent, e.clock.stamp(), res.Now)
	}
	for _, d := range res.Decided {
		// Missed runs are what an operator must hear about; skipped ones follow a policy
		// the job asked for.
		level, msg := slog.LevelInfo, "occurrence not run"
		switch d.Status {
		case queue.StatusMissed:
			level = slog.LevelWarn
		case queue.StatusUnplaced:
			level, msg = slog.LevelWarn, "no live node may run the occurrence: it waits for one"
		}
		e.log.Log(ctx, level, msg, "occurrence", d.Occurrence, "status", d.Status, "reason", d.Reason)
		e.countDecided(d)
	}
	for _, s := range res.Stuck {
		e.faults.stuck(s)
	}
	n := map[int]int{}
	for _, c := range res.Claims {
		n[c.Shard]++
	}
	for _, s := range shards {
		if err, ok := res.Failed[s]; ok {
			// The shard's fault is its own: leave it alone a while, and run the others.
			e.heads.set(s, e.clock.now().Add(e.faults.failed(s, "claim", err)), true, since)
			continue
		}
		e.faults.answered(s)
		h, ok := res.Heads[s]
		switch {
		case res.Shared[s]:
			// This node took its share of a burst: the others claim theirs before it asks
			// again for what they left.
			h, ok = e.clock.now().Add(e.cfg.ClaimAhead+e.shareYield()), true
		case n[s] >= per:
			h, ok = res.Now, true // more may be due: ask again at once
		}
		e.heads.set(s, h, ok, since)
	}
	e.countClaims(res, shards, expected, n, per)
	return res.Claims, sent, nil
}
