package engine

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// faults keeps the shards that refused calls (a key of the wrong type, a failing script):
// such a fault is the shard's alone, so it is logged once per shard when it begins (and again
// only if it changes) and once when the shard answers again, without touching the node's
// outage state, and each faulty shard is retried with its own backoff while the others run on.
type faults struct {
	log *slog.Logger
	now func() time.Time // Redis' clock, as the node knows it
	// margin is how long after a fault began another node's last successful claim may
	// still have claimed occurrences (its call came before the fault, claiming ahead).
	margin time.Duration

	mu        sync.Mutex
	shards    map[int]*fault
	keys      map[string]time.Time // keys found of another type: when last logged
	recovered map[int]time.Time    // shards that answered again: where to plan them again from
}

type fault struct {
	msg   string
	delay time.Duration
	since time.Time // Redis' clock when this node's first call failed
}

func newFaults(log *slog.Logger, now func() time.Time, margin time.Duration) *faults {
	return &faults{log: log, now: now, margin: margin, shards: map[int]*fault{}, keys: map[string]time.Time{}, recovered: map[int]time.Time{}}
}

// stuck logs an occurrence that a key of its own keeps from being decided, once per key
// (again after keyRelog, so that a key left broken is not forgotten in the log).
func (f *faults) stuck(s queue.Stuck) {
	f.mu.Lock()
	last, seen := f.keys[s.Key]
	now := time.Now()
	log := !seen || now.Sub(last) >= keyRelog
	if log {
		f.keys[s.Key] = now
	}
	f.mu.Unlock()
	if log {
		f.log.Error("a key holds another type than cronfleet writes there: this occurrence waits until it is deleted; the job's other occurrences and the other jobs run on",
			"key", s.Key, "job", s.Job, "occurrence", s.Occurrence)
	}
}

// keyRelog is how often a key that stays of the wrong type is logged again.
const keyRelog = 10 * time.Minute

// failed records that shard refused op with err, and returns how long to leave it alone.
func (f *faults) failed(shard int, op string, err error) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.shards[shard]
	if ft == nil {
		ft = &fault{delay: retryFirst, since: f.now()}
		f.shards[shard] = ft
	} else {
		ft.delay = min(2*ft.delay, retryLongest)
	}
	// The same fault fails every operation on the shard, each with its own script line:
	// it is the same fault while it names the same key (or error kind).
	what := err.Error()
	var se *queue.ShardError
	var re *queue.ReplyError
	switch {
	case errors.As(err, &se) && se.Key != "":
		what = se.Key
	case errors.As(err, &re):
		what = re.Kind
	}
	if what != ft.msg {
		ft.msg = what
		f.log.Error("an agenda shard refused calls; its jobs wait, the others run on", "shard", shard, "op", op, "err", err)
	}
	return ft.delay
}

// answered records that shard answered op again. A shard that answers after a fault is
// planned again from when the fault began (see recoveredShards).
func (f *faults) answered(shard int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft, ok := f.shards[shard]; ok {
		delete(f.shards, shard)
		f.recovered[shard] = ft.since.Add(f.margin)
		f.log.Info("an agenda shard answers again; its jobs are planned again from when it failed, so that what fell due meanwhile is run or recorded per their catch-up policy",
			"shard", shard, "fault", ft.msg, "since", ft.since.UTC().Format(time.RFC3339Nano))
	}
}

// recoveredShards returns, and forgets, the shards that answered again since the last call,
// each with the instant to plan its jobs again from. A fault may have taken the shard's
// planned occurrences with it (a key written over its agenda), and nothing would add them
// back: the expander adds what Redis does not know from there, and claims decide by the
// catch-up policy what fell due meanwhile. Nothing due after that instant can have been
// claimed during the fault (every call on the shard failed), so nothing runs twice.
func (f *faults) recoveredShards() map[int]time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.recovered) == 0 {
		return nil
	}
	out := f.recovered
	f.recovered = map[int]time.Time{}
	return out
}
