package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// expander keeps every job's occurrences added to the agenda a horizon ahead. It follows
// Reload: a job it has not seen before has its watermark read first (it may have run before
// it was added to this node's files), and a job whose definition changed is planned again.
func (e *Engine) expander(ctx context.Context) {
	bo := newBackoff()
	wms := map[string]time.Time{}   // job → watermark, where it has one
	known := map[string]string{}    // job → the Hash it was planned with
	until := map[string]time.Time{} // how far each job was expanded by this node
	defs := newDefinitions()
	floors := map[string]time.Time{} // job → where to plan again from, after Redis lost state
	var lossSaid time.Time           // when a loss was last logged (monotonic)
	sampled := false
	for {
		set := e.jobs.Load()
		losses, err := e.agenda.Recover(ctx)
		if err != nil {
			if !e.retry(ctx, "recover", err, bo) {
				return
			}
			continue
		}
		if len(losses) > 0 {
			e.replan(set, losses, floors, wms, until, &lossSaid)
		}
		if rec := e.faults.recoveredShards(); rec != nil {
			planAgain(set, rec, floors, wms, until)
		}
		var fresh []string
		for _, j := range set.list {
			if h, ok := known[j.Name]; !ok {
				fresh = append(fresh, j.Name)
			} else if h != j.Hash {
				known[j.Name] = j.Hash
				defs.load(j.Name, e.clock.now())
				delete(until, j.Name)
			}
		}
		if len(known) > len(set.list)-len(fresh) {
			for name := range known { // removed by a reload
				if _, ok := set.byName[name]; !ok {
					delete(known, name)
					delete(until, name)
					delete(wms, name)
					defs.drop(name)
				}
			}
		}
		if !sampled || len(fresh) > 0 {
			// Learn the offset to Redis' clock first: a new job starts at Redis' now, and a
			// node whose clock is off must not plan from its own.
			err := e.sampleClock(ctx)
			var got map[string]time.Time
			if err == nil {
				got, err = e.agenda.Watermarks(ctx, fresh)
			}
			if err != nil {
				if !e.retry(ctx, "watermarks", err, bo) {
					return
				}
				continue
			}
			e.outages.answered()
			bo.Reset()
			sampled = true
			for name, wm := range got {
				wms[name] = wm
			}
			for _, name := range fresh {
				defs.load(name, e.clock.now())
			}
			for _, j := range set.list {
				known[j.Name] = j.Hash
			}
		}
		now := e.clock.now()
		exps := defs.retire()
		end := now.Add(e.cfg.Horizon)
		// The expansions are sent in batches, so that a large job set's first pass, which
		// sends every job's definition, holds one batch of them at a time and not all.
		var failed, gone, again bool // Expand failed; retry gave up; start the next pass at once
		send := func() {
			if len(exps) == 0 || failed {
				return
			}
			batch := exps
			exps = nil
			got, err := e.agenda.Expand(ctx, batch)
			if err != nil {
				failed, gone = true, !e.retry(ctx, "expand", err, bo)
				return
			}
			e.outages.answered()
			bo.Reset()
			e.countDropped(got.Dropped)
			for _, x := range batch {
				if x.Definition == "-" {
					continue // a job dropped from the files
				}
				if err, ok := got.Failed[x.Job]; ok {
					// Planned again at the next pass; the other jobs go on.
					e.faults.failed(queue.ShardOf(x.Job), "expand", err)
					continue
				}
				delete(floors, x.Job)
				until[x.Job] = end
				if wm, ok := got.Watermarks[x.Job]; ok {
					wms[x.Job] = wm
				}
				if len(x.Due) > 0 && e.heads.lower(queue.ShardOf(x.Job), firstStart(x)) {
					e.notify()
				}
			}
			if reload := e.settle(ctx, defs, batch, got); len(reload) > 0 {
				for _, name := range reload {
					delete(until, name)
				}
				again = true // their definition takes over: expand them at once
			}
		}
		for _, j := range set.list {
			if failed {
				break
			}
			if u, ok := until[j.Name]; ok && u.After(now.Add(e.cfg.Horizon/2)) {
				continue
			}
			if wm, ok := wms[j.Name]; ok && !defs.sent[j.Name] && wm.After(now) {
				// A definition Redis has not seen may replan the job from now (see
				// lua/expand.lua): plan from now, or its first occurrences would be lost.
				// If it was in force already, what lies before the watermark is not added.
				wms[j.Name] = now
			}
			if x := e.plan(j, wms, now); len(x.Due) > 0 || len(x.Excluded) > 0 || defs.due(j.Name) || !floors[j.Name].IsZero() {
				x.Floor = floors[j.Name]
				defs.stamp(&x, j.Hash)
				exps = append(exps, x)
				if len(exps) >= expandBatch {
					send()
				}
			} else {
				until[j.Name] = end // nothing due within the horizon: nothing to send
			}
		}
		send()
		if gone {
			return
		}
		if failed || again {
			continue
		}
		// Sample Redis' clock every half-second mark, when the node and Redis are quiet:
		// the tight lower bound it gives lets the next second's runs start on time (see
		// redisClock); the claims' own replies come back in the thick of the burst.
		// Best effort: when Redis is away, Expand above reports the outage.
		_ = e.sampleClock(ctx)
		now = e.clock.now()
		t := time.NewTimer(untilMidSecond(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-e.agenda.Lost():
		case <-t.C:
		}
		t.Stop()
	}
}

// replan makes the expander plan the jobs of the shards Redis lost again, from each loss's
// floor: what Redis forgot is added back (lua/expand.lua skips what it still knows).
// The loss is logged once: shards that learn of it a little later (within a lease) are
// logged at debug level.
func (e *Engine) replan(set *jobSet, losses []queue.Loss, floors, wms map[string]time.Time, until map[string]time.Time, said *time.Time) {
	byShard := map[int]queue.Loss{}
	shards := make([]int, 0, len(losses))
	for _, l := range losses {
		byShard[l.Shard] = l
		shards = append(shards, l.Shard)
	}
	slices.Sort(shards)
	var restored time.Time
	for _, l := range losses {
		if l.Restored.After(restored) {
			restored = l.Restored
		}
	}
	attrs := []any{"shards", shards, "hold", e.cfg.Lease}
	if restored.IsZero() {
		attrs = append(attrs, "state", "empty: restarted without persistence, flushed, or a new server")
	} else {
		attrs = append(attrs, "state", "older: written up to "+restored.UTC().Format(time.RFC3339Nano)+" (a restored snapshot, or a replica that missed writes)")
	}
	msg := "Redis lost state: holding claims for a lease, writing back this node's recent completions, and planning the jobs again from before the loss"
	if !said.IsZero() && time.Since(*said) < e.cfg.Lease {
		e.log.Debug(msg, attrs...)
	} else {
		e.log.Error(msg, attrs...)
		*said = time.Now()
	}
	from := make(map[int]time.Time, len(byShard))
	for s, l := range byShard {
		from[s] = l.Floor
	}
	planAgain(set, from, floors, wms, until)
}

// planAgain makes the expander plan the jobs of the shards in from again, each from its
// shard's instant (its floor): what Redis does not know from there is added
// (lua/expand.lua).
func planAgain(set *jobSet, from map[int]time.Time, floors, wms map[string]time.Time, until map[string]time.Time) {
	for _, j := range set.list {
		floor, ok := from[queue.ShardOf(j.Name)]
		if !ok {
			continue
		}
		if f, ok := floors[j.Name]; !ok || floor.Before(f) {
			floors[j.Name] = floor
		}
		if wm, ok := wms[j.Name]; !ok || floors[j.Name].Before(wm) {
			wms[j.Name] = floors[j.Name]
		}
		delete(until, j.Name)
	}
}

// untilMidSecond is how long from now (Redis' clock) until the next half-second mark: most
// schedules fall due on whole seconds, so expanding in between keeps the expansion's CPU
// out of the way of the runs starting then.
func untilMidSecond(now time.Time) time.Duration {
	mid := now.Truncate(time.Second).Add(500 * time.Millisecond)
	if !mid.After(now) {
		mid = mid.Add(time.Second)
	}
	return mid.Sub(now)
}

// expandBatch is how many jobs' expansions are sent to Redis at a time.
const expandBatch = 2000

// maxExpand bounds the occurrences one job adds per expansion (a catch-up after a long
// outage of a job that runs every second, say).
const maxExpand = 20000

// plan computes the occurrences of j to add: from its watermark (or now, for a job never
// expanded) to a horizon ahead. What lies before the job's catch-up window is passed over,
// with one missed record for all of it.
func (e *Engine) plan(j *config.Job, wms map[string]time.Time, now time.Time) queue.Expansion {
	x := queue.Expansion{Job: j.Name, MaxRuns: j.MaxRuns, Policy: j.Policy, Alerts: alertsOf(j)}
	from := now.Add(-time.Second)
	if wm, ok := wms[j.Name]; ok {
		from = wm
		if oldest := now.Add(-j.Policy.CatchupWindow); from.Before(oldest) {
			if first := j.Sched.Next(from); !first.IsZero() && first.Before(oldest) {
				// The record is written once, by the node whose expansion finds the
				// watermark still before oldest; it is said here on every node that tries.
				e.log.Warn("passing over occurrences missed by the whole fleet, older than the catch-up window",
					"job", j.Name, "from", first.UTC(), "to", oldest.UTC(), "catchup_window", j.Policy.CatchupWindow)
				x.Dropped = &queue.Record{
					Occurrence: cron.OccurrenceID(j.Name, first), Job: j.Name, Node: e.cfg.Node,
					ScheduledAt: first.UTC(), StartedAt: now.UTC(), EndedAt: now.UTC(), Status: queue.StatusMissed,
					Error: fmt.Sprintf("missed: the occurrences from %s to %s fell due while no node was running, and are older than the catch-up window (%s)",
						first.UTC().Format(time.RFC3339), oldest.UTC().Format(time.RFC3339), j.Policy.CatchupWindow),
				}
				x.DroppedUntil = oldest
				if x.Alerts.Missed {
					x.DroppedAlert = cron.AlertID(x.Dropped.Occurrence, cron.AlertMissed)
				}
			}
			from = oldest
			wms[j.Name] = oldest // said once: the next plan starts here
		}
	}
	x.Due = cron.Expand(j.Sched, from, now.Add(e.cfg.Horizon), maxExpand)
	if len(j.Exclude) > 0 {
		x.Due, x.Excluded = e.exclude(j, x.Due, now)
	}
	if len(x.Due) == 0 {
		return x
	}
	x.IDs = make([]string, len(x.Due))
	for i, d := range x.Due {
		x.IDs[i] = cron.OccurrenceID(j.Name, d)
	}
	if x.Alerts.LateAfter > 0 {
		x.Late = make([]string, len(x.IDs))
		for i, id := range x.IDs {
			x.Late[i] = cron.AlertID(id, cron.AlertLate)
		}
	}
	starts := x.Due
	if j.Jitter > 0 {
		// Drawn from the id, so that every node agrees; never before the due time.
		x.NotBefore = make([]time.Time, len(x.Due))
		for i, d := range x.Due {
			x.NotBefore[i] = d.Add(cron.Jitter(x.IDs[i], j.Jitter))
		}
		starts = x.NotBefore
	}
	// Each occurrence's next is the one after it in this expansion; the last one's is the
	// schedule's next (zero past the schedule's end).
	x.Next = append(slices.Clone(starts[1:]), time.Time{})
	if last := cron.Without(j.Sched, j.Location, j.Exclude).Next(x.Due[len(x.Due)-1]); !last.IsZero() {
		x.Next[len(x.Next)-1] = last.Add(cron.Jitter(cron.OccurrenceID(j.Name, last), j.Jitter))
	}
	return x
}

// exclude splits due into the instants that run and the records of those that j's calendars
// exclude: the expansion writes those to history as skipped, so that the occurrence is
// recorded once and never reaches the agenda, where it would be claimed, count toward
// max_runs and hold the job's overlap slot. The record's scheduled time is the schedule's
// instant: the test is on it, not on the jittered start, which never comes.
func (e *Engine) exclude(j *config.Job, due []time.Time, now time.Time) ([]time.Time, []queue.Record) {
	var recs []queue.Record
	runs := due[:0:0]
	for _, d := range due {
		x, ok := cron.Excluded(d, j.Location, j.Exclude)
		if !ok {
			runs = append(runs, d)
			continue
		}
		recs = append(recs, queue.Record{
			Occurrence: cron.OccurrenceID(j.Name, d), Job: j.Name, Node: e.cfg.Node,
			ScheduledAt: d.UTC(), StartedAt: now.UTC(), EndedAt: now.UTC(), Status: queue.StatusSkipped, Error: x.String(),
		})
	}
	if recs == nil {
		return due, nil
	}
	return runs, recs
}

// firstStart is the earliest instant from which an occurrence of x may be claimed.
func firstStart(x queue.Expansion) time.Time {
	if x.NotBefore == nil {
		return x.Due[0]
	}
	return slices.MinFunc(x.NotBefore, func(a, b time.Time) int { return a.Compare(b) })
}
