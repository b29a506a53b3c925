package main_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// TestClaimsAheadOfAKilledNodeAreHeldShort: a node claims a burst a little ahead of its due
// time and is killed before the runs start. Their leases were given only until shortly past
// the due time (queue.Config.AheadGrace, a fifth of the lease plus a second), not the whole
// lease, so another node runs them seconds later, not a lease later.
func TestClaimsAheadOfAKilledNodeAreHeldShort(t *testing.T) {
	t.Parallel()
	const (
		jobs  = 20
		lease = 30 * time.Second
		grace = lease/5 + time.Second
	)
	f := newFleet(t, recordJobsLease(jobs, "*/5 * * * * *", 0, "", lease))
	a := f.start("a")
	burst := time.Now().Add(2 * time.Second).Truncate(5 * time.Second).Add(5 * time.Second)
	testwait.For(t, 15*time.Second, "the instant just before the burst", func() bool { return time.Until(burst) < 50*time.Millisecond })
	if err := a.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	// The burst was claimed ahead, with short leases.
	rdb := f.redis.Client(t)
	for i := range jobs {
		occ := cron.OccurrenceID(fmt.Sprintf("job-%03d", i), burst)
		keys, err := rdb.Keys(t.Context(), "{cf:e2e:*}:lock:"+occ).Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("lock of %s: %v, %v; want it claimed ahead by the killed node", occ, keys, err)
		}
		ttl, err := rdb.PTTL(t.Context(), keys[0]).Result()
		// The claim was made a moment (the engine's ClaimAhead) before the burst.
		if err != nil || ttl <= 0 || ttl > grace+time.Second {
			t.Errorf("lock of %s expires in %v (%v), want about %v past its due time, not a lease", occ, ttl, err, grace)
		}
	}

	f.start("b")
	testwait.For(t, lease, "node b to run the burst", func() bool {
		ran := 0
		for _, e := range f.events() {
			if e.Kind == "start" && e.Node == "b" && strings.HasSuffix(e.Occurrence, cron.OccurrenceID("", burst)) {
				ran++
			}
		}
		return ran == jobs
	})
	if late := time.Since(burst); late > grace+5*time.Second {
		t.Errorf("the burst ran %v after its due time (killed %v before it), want within %v", late.Round(time.Millisecond), burst.Sub(killed).Round(time.Millisecond), grace+5*time.Second)
	}
}
