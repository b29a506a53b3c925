package redistest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	// clusterSlots is the number of hash slots of every Redis Cluster.
	clusterSlots = 16384
	// migrateBatch bounds the keys a MIGRATE moves at once, so the source never blocks long.
	migrateBatch = 100
)

// SlotOwner returns the index in Nodes of the master serving slot, waiting until the
// running nodes agree on it: a test asking right after a change must not see a stale view.
// Until the cluster fails a killed master over, the running nodes still name it; KillMaster
// waits for the failover, so after it SlotOwner names the promoted replica.
func (c *Cluster) SlotOwner(t testing.TB, slot int) int {
	t.Helper()
	checkSlot(t, slot)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var owner int
	err := poll(ctx, 20*time.Millisecond, func(ctx context.Context) error {
		var err error
		owner, err = c.agreedOwner(ctx, slot)
		return err
	})
	if err != nil {
		t.Fatalf("redistest: owner of slot %d: %v", slot, err)
	}
	return owner
}

// agreedOwner returns the owner of slot as every running node sees it, or an error when
// they disagree. Killed nodes are left out so a test can still ask after killing one.
func (c *Cluster) agreedOwner(ctx context.Context, slot int) (int, error) {
	owner := -1
	for i, n := range c.nodes {
		if !n.running() {
			continue
		}
		slots, err := c.slots(ctx, i)
		if err != nil {
			return 0, err
		}
		j := slices.IndexFunc(slots, func(r slotRange) bool { return r.start <= slot && slot <= r.end })
		if j < 0 || slots[j].master == "" {
			return 0, fmt.Errorf("%s serves slot %d from no node", n.Addr(), slot)
		}
		k := slices.Index(c.ids, slots[j].master)
		if k < 0 {
			return 0, fmt.Errorf("%s serves slot %d from unknown node %s", n.Addr(), slot, slots[j].master)
		}
		if owner >= 0 && k != owner {
			return 0, fmt.Errorf("nodes disagree on slot %d: %s and %s", slot, c.nodes[owner].Addr(), c.nodes[k].Addr())
		}
		owner = k
	}
	if owner < 0 {
		return 0, errors.New("no node running")
	}
	return owner, nil
}

// Masters returns the indexes in Nodes of the current masters, in order, once the running
// nodes agree on who replicates whom and each says the same of itself (INFO replication):
// after a failover the masters are no longer the first nodes started. Killed nodes are left
// out.
func (c *Cluster) Masters(t testing.TB) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	roles, err := c.pollRoles(ctx)
	if err != nil {
		t.Fatalf("redistest: masters of the cluster: %v", err)
	}
	var masters []int
	for i, m := range roles {
		if m < 0 && c.nodes[i].running() {
			masters = append(masters, i)
		}
	}
	return masters
}

// KillMaster kills the master at index i in Nodes with SIGKILL, as a crash would, and waits
// until the cluster has failed it over on its own: one of its replicas promoted, the slots
// it served served by that replica, every running node agreeing on the slot map and saying
// cluster_state:ok. It returns the index of the promoted replica. Only then is the failover
// over for clients too, since until every node agrees they may be sent to the dead master.
// Writes the dead master acknowledged but had not replicated yet are lost, as in production.
// A go-redis ClusterClient only learns of the new master from a MOVED or ASK or from its
// periodic reload (ClusterStateReloadInterval, 60s by default), and a dead master sends
// neither: call its ReloadState, or it keeps dialling the dead address until then.
func (c *Cluster) KillMaster(t testing.TB, i int) int {
	t.Helper()
	if i < 0 || i >= len(c.nodes) {
		t.Fatalf("redistest: kill master %d: the cluster has %d nodes", i, len(c.nodes))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	addr := c.nodes[i].Addr()
	// Killing a master whose replica has not synced, or that some node does not yet know
	// as its replica, would not fail over: settle first.
	var before view
	err := poll(ctx, 20*time.Millisecond, func(ctx context.Context) error {
		var err error
		before, err = c.ready(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("redistest: kill master %s: cluster not ready: %v", addr, err)
	}
	if !c.nodes[i].running() || before.masterOf[i] >= 0 {
		t.Fatalf("redistest: kill master %s: it is not a running master", addr)
	}
	var replicas []int
	for j, m := range before.masterOf {
		if m == i && c.nodes[j].running() {
			replicas = append(replicas, j)
		}
	}
	if len(replicas) == 0 {
		t.Fatalf("redistest: kill master %s: it has no replica to fail over to (StartClusterWithReplicas)", addr)
	}
	var served []slotRange
	for _, r := range before.slots {
		if r.master == c.ids[i] {
			served = append(served, r)
		}
	}

	c.nodes[i].Kill()
	promoted := -1
	err = poll(ctx, 20*time.Millisecond, func(ctx context.Context) error {
		v, err := c.ready(ctx)
		if err != nil {
			return err
		}
		k := slices.IndexFunc(replicas, func(j int) bool { return v.masterOf[j] < 0 })
		if k < 0 {
			return fmt.Errorf("no replica of %s promoted", addr)
		}
		promoted = replicas[k]
		for _, r := range served {
			for slot := r.start; slot <= r.end; slot++ {
				if id := ownerID(v.slots, slot); id != c.ids[promoted] {
					return fmt.Errorf("slot %d served by node %q, not by the promoted %s", slot, id, c.nodes[promoted].Addr())
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("redistest: kill master %s: no failover: %v", addr, err)
	}
	return promoted
}

// ownerID returns the ID of the master serving slot in the sorted slot map slots, "" when
// none does.
func ownerID(slots []slotRange, slot int) string {
	j, found := slices.BinarySearchFunc(slots, slot, func(r slotRange, slot int) int { return r.start - slot })
	if !found {
		j-- // the range starting before slot, if any, may hold it
	}
	if j < 0 || slot > slots[j].end {
		return ""
	}
	return slots[j].master
}

// MigrateSlot moves slot and its keys from its current owner to Nodes()[to], a master, the
// way a live resharding does, while clients may keep writing: that is what sends them ASK
// during the move and MOVED after it. It returns once all running nodes agree on the new
// owner.
func (c *Cluster) MigrateSlot(t testing.TB, slot int, to int) {
	t.Helper()
	checkSlot(t, slot)
	if to < 0 || to >= len(c.nodes) {
		t.Fatalf("redistest: migrate slot %d to node %d: the cluster has %d nodes", slot, to, len(c.nodes))
	}
	from := c.SlotOwner(t, slot)
	if from == to {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.migrate(ctx, slot, from, to); err != nil {
		t.Fatalf("redistest: migrate slot %d from %s to %s: %v", slot, c.nodes[from].Addr(), c.nodes[to].Addr(), err)
	}
	if got := c.SlotOwner(t, slot); got != to {
		t.Fatalf("redistest: migrate slot %d: owner is %s, want %s", slot, c.nodes[got].Addr(), c.nodes[to].Addr())
	}
}

func (c *Cluster) migrate(ctx context.Context, slot, from, to int) error {
	roles, err := c.pollRoles(ctx)
	if err != nil {
		return fmt.Errorf("roles: %w", err)
	}
	if roles[to] >= 0 || !c.nodes[to].running() {
		return fmt.Errorf("%s is not a running master: only a master can own a slot", c.nodes[to].Addr())
	}
	src, dst := c.admin[from], c.admin[to]
	// Importing before migrating: the source starts sending ASK as soon as it migrates, and
	// the target must already accept ASKING for the slot then.
	if err := dst.Do(ctx, "cluster", "setslot", slot, "importing", c.ids[from]).Err(); err != nil {
		return fmt.Errorf("setslot importing: %w", err)
	}
	if err := src.Do(ctx, "cluster", "setslot", slot, "migrating", c.ids[to]).Err(); err != nil {
		return fmt.Errorf("setslot migrating: %w", err)
	}
	// While migrating, the source creates no new key in the slot (it sends ASK instead), so
	// once it lists none, none are left to move.
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, migrateBatch).Result()
		if err != nil {
			return fmt.Errorf("getkeysinslot: %w", err)
		}
		if len(keys) == 0 {
			break
		}
		// REPLACE: a key is only on both nodes after a MIGRATE that timed out after the
		// restore; the source's copy is the one writers have been updating.
		args := []any{"migrate", "127.0.0.1", c.nodes[to].Port(), "", 0, 5000, "replace", "keys"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("migrate %d keys: %w", len(keys), err)
		}
	}
	// The target first, so that when the source stops serving the slot its MOVED points to a
	// node that already owns it; then the other masters, rather than waiting for gossip.
	// Replicas refuse SETSLOT and learn the new owner from their masters' gossip.
	order := []int{to, from}
	for i := range c.nodes {
		if i != to && i != from && c.nodes[i].running() && roles[i] < 0 {
			order = append(order, i)
		}
	}
	for _, i := range order {
		if err := c.admin[i].Do(ctx, "cluster", "setslot", slot, "node", c.ids[to]).Err(); err != nil {
			return fmt.Errorf("setslot node on %s: %w", c.nodes[i].Addr(), err)
		}
	}
	return nil
}

func checkSlot(t testing.TB, slot int) {
	t.Helper()
	if slot < 0 || slot >= clusterSlots {
		t.Fatalf("redistest: slot %d out of range [0, %d)", slot, clusterSlots)
	}
}

// KeySlot returns the hash slot of key exactly as Redis Cluster computes it, honouring a
// {hash tag}, so a test can pick keys of a chosen slot or check that related keys share one
// without asking a server.
func KeySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % clusterSlots)
}

// crc16 is CRC-16/XMODEM, the variant the Redis Cluster specification hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// pollRoles asks for roles until the nodes agree on them or ctx ends, since a failover or
// a migration takes a moment to reach every node.
func (c *Cluster) pollRoles(ctx context.Context) ([]int, error) {
	var roles []int
	err := poll(ctx, 20*time.Millisecond, func(ctx context.Context) error {
		var err error
		roles, err = c.roles(ctx)
		return err
	})
	return roles, err
}
