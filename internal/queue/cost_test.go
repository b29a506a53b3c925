package queue

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/redistest"
)

// BenchmarkRedisCost measures what Redis spends on each occurrence of a busy fleet: many
// jobs due at one instant in every shard, expanded, claimed in the engine's batches per
// shard and completed in the engine's batches with a run record, as a node does at each
// burst. It reports Redis' own CPU (INFO cpu, main thread) per occurrence and per step,
// which is what bounds a fleet on one Redis: its scripts run on its single thread. One op
// is one occurrence. With small batches, as a node would make that claimed whenever a slot
// freed, the scripts' fixed cost per call shows.
func BenchmarkRedisCost(b *testing.B) {
	for _, bc := range []struct{ perShard, complete int }{{64, 256}, {4, 16}} {
		b.Run(fmt.Sprintf("claim=%d,complete=%d", bc.perShard, bc.complete), func(b *testing.B) {
			redisCost(b, 10000, bc.perShard, bc.complete)
		})
	}
}

// redisCost runs BenchmarkRedisCost with jobs jobs, claimed perShard at a time from each
// shard and completed completeBatch at a time.
func redisCost(b *testing.B, jobs, perShard, completeBatch int) {
	be := newRedis(b)
	q := be.queue(Config{Lease: time.Minute, Node: "bench"})
	ctx := b.Context()
	names := make([]string, jobs)
	for i := range names {
		names[i] = "job-" + strconv.Itoa(i)
		// A watermark, as a job that ran before has: its expansions add each occurrence.
		if err := be.rdb.HSet(ctx, q.keys(ShardOf(names[i])).watermarks(), names[i], 0).Err(); err != nil {
			b.Fatal(err)
		}
	}
	shards := make([]int, Shards)
	for i := range shards {
		shards[i] = i
	}
	for sh := range Shards {
		// A fleet's agenda holds its jobs' next occurrences, expanded ahead: their fields
		// keep the per-occurrence hash of when each one's successor is due from emptying.
		for i := range 200 {
			if err := be.rdb.HSet(ctx, q.keys(sh).next(), "~horizon-"+strconv.Itoa(i), 1).Err(); err != nil {
				b.Fatal(err)
			}
		}
	}
	var expand, claim, complete time.Duration
	round := int64(0)
	b.ResetTimer()
	for done := 0; done < b.N; {
		round++
		// Due a moment after it is added, as a fleet's expansion runs ahead of its dues: one
		// added late is marked so, which costs its claim a look that a fleet does not pay.
		now, err := be.rdb.Time(ctx).Result()
		if err != nil {
			b.Fatal(err)
		}
		due := now.Truncate(time.Millisecond).Add(50 * time.Millisecond)
		exps := make([]Expansion, jobs)
		for i, name := range names {
			exps[i] = Expansion{Job: name, Due: []time.Time{due}, IDs: []string{name + "@" + strconv.FormatInt(due.UnixMilli(), 10)},
				Next: []time.Time{due.Add(time.Hour)}}
		}
		t0 := redisCPU(ctx, b, be.rdb)
		if _, err := q.Expand(ctx, exps); err != nil {
			b.Fatal(err)
		}
		expanded := redisCPU(ctx, b, be.rdb)
		for {
			now, err := be.rdb.Time(ctx).Result()
			if err != nil {
				b.Fatal(err)
			}
			if now.After(due) {
				break
			}
		}
		t1 := redisCPU(ctx, b, be.rdb)
		var claims []Claim
		for {
			now, err := be.rdb.Time(ctx).Result()
			if err != nil {
				b.Fatal(err)
			}
			c, err := q.Claim(ctx, shards, perShard, 0, now.Add(q.CallTimeout()), nil)
			if err != nil {
				b.Fatal(err)
			}
			if len(c.Claims) == 0 {
				break
			}
			claims = append(claims, c.Claims...)
		}
		if len(claims) != jobs {
			b.Fatalf("round %d: claimed %d of %d", round, len(claims), jobs)
		}
		t2 := redisCPU(ctx, b, be.rdb)
		for len(claims) > 0 {
			n := min(completeBatch, len(claims))
			cs := make([]Completion, n)
			for i, cl := range claims[:n] {
				start := due.Add(3 * time.Millisecond)
				cs[i] = Completion{Claim: cl, Record: &Record{Occurrence: cl.Occurrence, Job: cl.Job, Node: "bench",
					Attempt: cl.Attempt, FencingToken: cl.Token, ScheduledAt: due, StartedAt: start,
					EndedAt: start.Add(time.Millisecond), Status: StatusSucceeded}}
			}
			res, err := q.Complete(ctx, cs)
			if err != nil {
				b.Fatal(err)
			}
			for i, ok := range res.Accepted {
				if !ok {
					b.Fatalf("completion of %s refused", cs[i].Claim.Occurrence)
				}
			}
			claims = claims[n:]
		}
		t3 := redisCPU(ctx, b, be.rdb)
		expand, claim, complete = expand+expanded-t0, claim+t2-t1, complete+t3-t2
		done += jobs
	}
	b.StopTimer()
	n := float64(round) * float64(jobs)
	b.ReportMetric(float64((expand+claim+complete).Microseconds())/n, "redis-µs/occ")
	b.ReportMetric(float64(expand.Microseconds())/n, "expand-µs/occ")
	b.ReportMetric(float64(claim.Microseconds())/n, "claim-µs/occ")
	b.ReportMetric(float64(complete.Microseconds())/n, "complete-µs/occ")
}

// redisCPU is the CPU time Redis' main thread has used.
func redisCPU(ctx context.Context, b *testing.B, rdb *redis.Client) time.Duration {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for _, k := range []string{"used_cpu_sys_main_thread", "used_cpu_user_main_thread"} {
		s, err := strconv.ParseFloat(redistest.InfoField(info, k), 64)
		if err != nil {
			b.Fatal(fmt.Errorf("INFO cpu %s: %w", k, err))
		}
		total += time.Duration(s * float64(time.Second))
	}
	return total
}
