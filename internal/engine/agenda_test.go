package engine

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cronfleet/cronfleet/internal/lease"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// memAgenda is an in-memory Agenda with the contract of internal/queue's scripts, for tests in
// a synctest bubble: its Redis clock is time.Now, the bubble's fake time, so every instant
// the engine meets is exact. It keeps a log of the calls and claims for the tests to check.
type memAgenda struct {
	lease time.Duration
	// down, if set, makes a call fail with its error (an outage) when it returns one.
	down func(op string) error
	// eviction, if set, is CheckEviction's answer when the call itself does not fail.
	eviction func() error

	mu       sync.Mutex
	scores   map[string]time.Time // occurrence → when it may be claimed (its agenda score)
	wms      map[string]time.Time // job → due time of its newest occurrence ever added
	fence    map[string]int64     // job → last fencing token
	attempts map[string]int       // occurrence → claims so far
	held     map[string]int64     // occurrence → token of the claim holding it
	calls    []agendaCall
	claims   []claimed
	outputs  []queue.Output
	// mostHeld is the most claims held at once: claimed, not yet completed.
	mostHeld int
	// busy says the engine called in a busy loop (maxCallsAtOnce).
	busy bool
}

type agendaCall struct {
	op  string
	at  time.Time
	err error
}

// claimed is one claim the agenda handed out.
type claimed struct {
	at        time.Time
	claim     queue.Claim
	lead      time.Duration
	completed bool
}

func newMemAgenda(lease time.Duration) *memAgenda {
	return &memAgenda{
		lease:  lease,
		scores: map[string]time.Time{}, wms: map[string]time.Time{}, fence: map[string]int64{},
		attempts: map[string]int{}, held: map[string]int64{},
	}
}

var _ Agenda = (*memAgenda)(nil)

// maxCallsAtOnce is more calls than the engine makes at one instant unless it loops
// without waiting, which on fake time would hang the test instead of failing it.
const maxCallsAtOnce = 1000

var errBusyLoop = errors.New("memAgenda: called in a busy loop")

// call logs a call to op and says whether it fails; a.mu is held.
func (a *memAgenda) call(op string) error {
	var err error
	if a.down != nil {
		err = a.down(op)
	}
	now := time.Now()
	if n := len(a.calls); n >= maxCallsAtOnce && a.calls[n-maxCallsAtOnce].at.Equal(now) {
		a.busy, err = true, errBusyLoop // the engine backs off, so time moves on
	}
	a.calls = append(a.calls, agendaCall{op: op, at: now, err: err})
	return err
}

func (a *memAgenda) Watermarks(ctx context.Context, jobs []string) (map[string]time.Time, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.call("watermarks"); err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, j := range jobs {
		if wm, ok := a.wms[j]; ok {
			out[j] = wm
		}
	}
	return out, nil
}

func (a *memAgenda) Expand(ctx context.Context, exps []queue.Expansion) (queue.Expanded, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.call("expand"); err != nil {
		return queue.Expanded{}, err
	}
	now := time.Now()
	out := map[string]time.Time{}
	for _, x := range exps {
		wm, seen := a.wms[x.Job]
		for i, due := range x.Due {
			score := due
			if x.NotBefore != nil {
				score = x.NotBefore[i]
			}
			if seen && !due.After(wm) || !seen && score.Before(now) {
				continue
			}
			if _, ok := a.scores[x.IDs[i]]; !ok {
				a.scores[x.IDs[i]] = score
			}
			if !seen || due.After(wm) {
				wm, seen = due, true
			}
		}
		if seen {
			a.wms[x.Job], out[x.Job] = wm, wm
		}
	}
	return queue.Expanded{Watermarks: out}, nil
}

// Lost is never signalled: the in-memory agenda never loses state.
func (a *memAgenda) Lost() <-chan struct{} { return nil }

func (a *memAgenda) Recover(ctx context.Context) ([]queue.Loss, error) { return nil, nil }

func (a *memAgenda) ClaimPlaced(ctx context.Context, shards []int, limit int, lead time.Duration, deadline time.Time, _ []string, _ queue.Placement) (queue.Claimed, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.call("claim"); err != nil {
		return queue.Claimed{}, err
	}
	now := time.Now()
	res := queue.Claimed{Now: now, Heads: map[int]time.Time{}}
	if now.After(deadline) {
		limit = 0
	}
	for _, s := range shards {
		var due []string
		for occ, score := range a.scores {
			if queue.ShardOf(jobOf(occ)) == s && !score.After(now.Add(lead)) {
				due = append(due, occ)
			}
		}
		slices.SortFunc(due, func(x, y string) int { return cmp.Or(a.scores[x].Compare(a.scores[y]), cmp.Compare(x, y)) })
		for _, occ := range due[:min(len(due), limit)] {
			job := jobOf(occ)
			a.fence[job]++
			a.attempts[occ]++
			c := queue.Claim{Occurrence: occ, Job: job, Shard: s, Attempt: a.attempts[occ], Token: a.fence[job], NotBefore: a.scores[occ], TTL: a.lease}
			a.scores[occ] = now.Add(a.lease)
			a.held[occ] = c.Token
			a.claims = append(a.claims, claimed{at: now, claim: c, lead: lead})
			res.Claims = append(res.Claims, c)
		}
		for occ, score := range a.scores {
			if h, ok := res.Heads[s]; queue.ShardOf(jobOf(occ)) == s && (!ok || score.Before(h)) {
				res.Heads[s] = score
			}
		}
	}
	a.mostHeld = max(a.mostHeld, len(a.held))
	return res, nil
}

func (a *memAgenda) Complete(ctx context.Context, cs []queue.Completion) (queue.Completed, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.call("complete"); err != nil {
		return queue.Completed{}, err
	}
	out := make([]bool, len(cs))
	for i, c := range cs {
		occ := c.Claim.Occurrence
		if a.held[occ] != c.Claim.Token {
			continue
		}
		out[i] = true
		delete(a.held, occ)
		for j := range a.claims {
			if a.claims[j].claim == c.Claim {
				a.claims[j].completed = true
			}
		}
		switch {
		case c.Release:
			a.attempts[occ]--
			fallthrough
		case c.Retry:
			a.scores[occ] = time.Now().Add(max(c.Delay, time.Millisecond))
		default:
			delete(a.scores, occ)
		}
	}
	return queue.Completed{Accepted: out}, nil
}

func (a *memAgenda) Renew(ctx context.Context, ls []lease.Lease) ([]lease.Verdict, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.call("renew"); err != nil {
		return nil, err
	}
	out := make([]lease.Verdict, len(ls))
	for i, l := range ls {
		if a.held[l.Occurrence] == l.Token {
			out[i] = lease.Held
			a.scores[l.Occurrence] = time.Now().Add(a.lease)
		}
	}
	return out, nil
}

func (a *memAgenda) Time(ctx context.Context) (time.Time, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.call("time"); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

func (a *memAgenda) CallTimeout() time.Duration { return time.Second }

func (a *memAgenda) AppendOutput(ctx context.Context, o queue.Output) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.outputs = append(a.outputs, o)
	return nil
}

func (a *memAgenda) CheckEviction(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.call("check eviction"); err != nil {
		return err
	}
	if a.eviction != nil {
		return a.eviction()
	}
	return nil
}

func (a *memAgenda) Announce(ctx context.Context, n queue.Node) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.call("announce")
}

func (a *memAgenda) Depart(ctx context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.call("depart")
}

func (a *memAgenda) Nodes(ctx context.Context) ([]queue.NodeSeen, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return nil, a.call("nodes")
}

// log returns the calls and the claims so far.
// DrainDependents carries nothing: the engine's tests of dependencies run on a real Redis.
func (a *memAgenda) DrainDependents(ctx context.Context, shards []int) (int, []int, error) {
	return 0, nil, nil
}

// Upstream knows no upstream runs, for the same reason.
func (a *memAgenda) Upstream(ctx context.Context, occ string) ([]string, error) { return nil, nil }

// History keeps no records: the claims and completions are what the tests read.
func (a *memAgenda) History(ctx context.Context, job string, n int) ([]queue.Record, error) {
	return nil, nil
}

// FanOut is refused: the engine's tests use no broadcast or sharded job; the queue's and the
// runner's tests cover them on real Redis.
func (a *memAgenda) FanOut(ctx context.Context, f queue.FanOut) error {
	return errors.New("memAgenda: no parts")
}

func (a *memAgenda) log() ([]agendaCall, []claimed) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls), slices.Clone(a.claims)
}

// jobOf is the job part of an occurrence id.
func jobOf(occ string) string { return occ[:strings.LastIndexByte(occ, '@')] }
