package redistest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// clusterSlots is the number of hash slots of every Redis Cluster.
	clusterSlots = 16384
	// busOffset separates a cluster node's client port from its cluster bus port.
	busOffset = 10000
	// migrateBatch bounds the keys a MIGRATE moves at once, so the source never blocks long.
	migrateBatch = 100
)

// Cluster is a Redis Cluster of masters without replicas, started for a test. Code that
// promises to keep a job's keys in one {hash tag} slot only proves it when a real cluster
// answers MOVED and ASK, in particular while the slot moves under the writers.
type Cluster struct {
	nodes []*Server
	ids   []string        // cluster node IDs, by index of nodes
	admin []*redis.Client // one plain client per node, for cluster administration
}

// StartCluster starts masters cluster nodes (no fewer than redis-cli --cluster create
// accepts), joins them and returns once every node serves the same slot map, so the first
// command of a test never meets a half-formed cluster. Cleanup kills the nodes.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters (redis-cli --cluster create refuses fewer), got %d", masters)
	}
	cli := lookBinary(t, "redis-cli")
	c := &Cluster{}
	for range masters {
		c.nodes = append(c.nodes, startClusterNode(t))
	}
	for _, n := range c.nodes {
		c.admin = append(c.admin, n.Client(t))
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v: %s", err, out)
	}
	for i, a := range c.admin {
		id, err := a.ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatalf("redistest: cluster myid of %s: %v", c.nodes[i].Addr(), err)
		}
		c.ids = append(c.ids, id)
	}
	if err := poll(ctx, 20*time.Millisecond, c.converged); err != nil {
		t.Fatalf("redistest: cluster did not converge: %v", err)
	}
	return c
}

// startClusterNode starts one cluster-enabled node that has not joined any cluster yet.
func startClusterNode(t testing.TB) *Server {
	t.Helper()
	n, err := launch(Binary(t), t.TempDir(), clusterPort, func(s *Server) error {
		s.args = []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", s.port),
			"--cluster-node-timeout", "2000",
		}
		return nil
	})
	if err != nil {
		t.Fatalf("redistest: cluster node: %v", err)
	}
	n.t = t
	t.Cleanup(n.Kill)
	return n
}

// clusterPort returns a port that is free together with its cluster bus port, which a
// node takes as well and which must be a valid port too.
func clusterPort() (int, error) {
	var err error
	for range 20 {
		port := 20000 + rand.IntN(35000) // port+busOffset stays below the last port
		if err = probe(port, port+busOffset); err == nil {
			return port, nil
		}
	}
	return 0, fmt.Errorf("free cluster port: %w", err)
}

// probe checks that every port can be bound on loopback right now.
func probe(ports ...int) error {
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return fmt.Errorf("probe port %d: %w", p, err)
		}
		_ = l.Close()
	}
	return nil
}

// converged reports nil once every node says cluster_state:ok, knows all nodes and maps
// every slot to the same master: before that a client may be sent round in redirections.
func (c *Cluster) converged(ctx context.Context) error {
	var first []redis.ClusterSlot
	for i, a := range c.admin {
		info, err := a.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("cluster info of %s: %w", c.nodes[i].Addr(), err)
		}
		if st := infoField(info, "cluster_state"); st != "ok" {
			return fmt.Errorf("%s: cluster_state:%s", c.nodes[i].Addr(), st)
		}
		if n := infoField(info, "cluster_known_nodes"); n != strconv.Itoa(len(c.nodes)) {
			return fmt.Errorf("%s knows %s nodes, want %d", c.nodes[i].Addr(), n, len(c.nodes))
		}
		slots, err := c.slots(ctx, i)
		if err != nil {
			return err
		}
		if i == 0 {
			first = slots
		} else if !slices.EqualFunc(first, slots, sameRange) {
			return fmt.Errorf("%s and %s disagree on the slot map", c.nodes[0].Addr(), c.nodes[i].Addr())
		}
	}
	return nil
}

// slots returns node i's view of the slot map, sorted; a range's first node is its master.
func (c *Cluster) slots(ctx context.Context, i int) ([]redis.ClusterSlot, error) {
	slots, err := c.admin[i].ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster slots of %s: %w", c.nodes[i].Addr(), err)
	}
	slices.SortFunc(slots, func(a, b redis.ClusterSlot) int { return a.Start - b.Start })
	return slots, nil
}

func sameRange(a, b redis.ClusterSlot) bool {
	return a.Start == b.Start && a.End == b.End && len(a.Nodes) > 0 && len(b.Nodes) > 0 &&
		a.Nodes[0].ID == b.Nodes[0].ID
}

// Nodes returns the cluster's nodes, so a test can kill, pause or inspect one of them; the
// indices are those SlotOwner returns and MigrateSlot takes.
func (c *Cluster) Nodes() []*Server { return slices.Clone(c.nodes) }

// URL is the redis-cluster:// URL of the cluster, as the runner takes it.
func (c *Cluster) URL() string {
	return "redis-cluster://" + strings.Join(addrs(c.nodes), ",")
}

// Client returns a cluster client that follows MOVED and ASK, closed at the end of the test.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs(c.nodes)})
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// SlotOwner returns the index in Nodes of the master serving slot, waiting until the
// running nodes agree on it: a test asking right after a change must not see a stale view.
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
		j := slices.IndexFunc(slots, func(r redis.ClusterSlot) bool { return r.Start <= slot && slot <= r.End })
		if j < 0 || len(slots[j].Nodes) == 0 {
			return 0, fmt.Errorf("%s serves slot %d from no node", n.Addr(), slot)
		}
		k := slices.Index(c.ids, slots[j].Nodes[0].ID)
		if k < 0 {
			return 0, fmt.Errorf("%s serves slot %d from unknown node %s", n.Addr(), slot, slots[j].Nodes[0].ID)
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

// MigrateSlot moves slot and its keys from its current owner to Nodes()[to] the way a live
// resharding does, while clients may keep writing: that is what sends them ASK during the
// move and MOVED after it. It returns once all nodes agree on the new owner.
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
	order := []int{to, from}
	for i := range c.nodes {
		if i != to && i != from && c.nodes[i].running() {
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
