package config

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/cronfleet/cronfleet/internal/cron"
)

// decoder holds what the blocks of one load share, and may be used by several goroutines
// at once. Jobs that name the same zone share one *time.Location, and jobs with the same
// schedule in the same zone share one parsed schedule: a large job set names a few zones
// and a few dozen schedules many times over, and each zone loaded anew would be a copy of
// its whole transition table, read from the zone database again.
type decoder struct {
	eval      *hcl.EvalContext // functions for handler blocks
	pieceSize int              // see cut

	mu     sync.Mutex
	zones  map[string]zone
	scheds map[scheduleKey]parsed
}

type zone struct {
	loc *time.Location
	err error
}

// scheduleKey is what a parsed schedule depends on, less the seed: only a spec with an H
// form reads the seed, and such specs are never shared.
type scheduleKey struct {
	spec   string
	loc    *time.Location
	gap    cron.GapPolicy
	repeat cron.RepeatPolicy
}

// parsed is a parsed schedule: an error, or a schedule that may never fire.
type parsed struct {
	sched cron.Schedule
	err   error
	never bool
}

func newDecoder(eval *hcl.EvalContext) *decoder {
	return &decoder{eval: eval, pieceSize: pieceSize, zones: map[string]zone{}, scheds: map[scheduleKey]parsed{}}
}

// location loads the zone name once per load.
func (dec *decoder) location(name string) (*time.Location, error) {
	dec.mu.Lock()
	z, ok := dec.zones[name]
	dec.mu.Unlock()
	if ok {
		return z.loc, z.err
	}
	// cron.LoadLocation also rejects "Local": every node must read a schedule
	// the same way, and a node's local zone is its own.
	loc, err := cron.LoadLocation(name)
	if err == nil && loc == nil {
		err = fmt.Errorf("time zone %q has no location", name)
	}
	dec.mu.Lock()
	defer dec.mu.Unlock()
	if z, ok := dec.zones[name]; ok {
		return z.loc, z.err // another goroutine's, so that all jobs share one
	}
	dec.zones[name] = zone{loc: loc, err: err}
	return loc, err
}

// parse parses spec as o says, once per load for specs without an H form. Schedules are
// immutable, so jobs can share one.
func (dec *decoder) parse(spec string, o cron.Options) parsed {
	key := scheduleKey{spec: spec, loc: o.Location, gap: o.Gap, repeat: o.Repeat}
	shared := !strings.Contains(spec, "H")
	if shared {
		dec.mu.Lock()
		p, ok := dec.scheds[key]
		dec.mu.Unlock()
		if ok {
			return p
		}
	}
	var p parsed
	p.sched, p.err = cron.Parse(spec, o)
	if p.err == nil && p.sched == nil {
		p.err = fmt.Errorf("schedule %q parsed to nothing", spec)
	}
	// A fixed instant, not the clock, keeps a load deterministic: a schedule that
	// does not fire within the five years Next searches from it (February 30th)
	// never fires at all.
	if p.err == nil {
		p.never = p.sched.Next(time.Date(2001, time.January, 1, 0, 0, 0, 0, time.UTC)).IsZero()
	}
	if shared {
		dec.mu.Lock()
		defer dec.mu.Unlock()
		if q, ok := dec.scheds[key]; ok {
			return q
		}
		dec.scheds[key] = p
	}
	return p
}

// parallel calls f(0) … f(n-1), on as many goroutines as there are CPUs, and returns when
// all calls have.
func parallel(n int, f func(i int)) {
	var next atomic.Int64
	work := func() {
		for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
			f(i)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		work()
		return
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(work)
	}
	wg.Wait()
}
