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

// Cluster is a Redis Cluster started for a test, of masters alone or of masters with
// replicas. Code that promises to keep a job's keys in one {hash tag} slot only proves it
// when a real cluster answers MOVED and ASK, in particular while the slot moves under the
// writers; code that promises to survive a failover only proves it when a real master dies
// and the cluster promotes its replica.
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
	return startCluster(t, masters, 0)
}

// StartClusterWithReplicas starts masters masters with replicas replicas each, so that a
// test can kill a master (KillMaster) and watch the cluster promote one of its replicas. It
// returns once every node agrees on the slot map and on who replicates whom, and every
// replica's link to its master is up: a replica that has not synced yet cannot take over,
// and killing its master then would lose the slots instead of failing them over.
func StartClusterWithReplicas(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	if replicas < 0 {
		t.Fatalf("redistest: a cluster needs 0 or more replicas per master, got %d", replicas)
	}
	return startCluster(t, masters, replicas)
}

func startCluster(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters (redis-cli --cluster create refuses fewer), got %d", masters)
	}
	cli := lookBinary(t, "redis-cli")
	c := &Cluster{}
	for range masters * (1 + replicas) {
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
	// All nodes share one host, so redis-cli warns that replicas sit with their masters
	// (there is no other host to put them on) and --cluster-yes accepts that.
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
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
			// A replica refuses to take over when its data looks older than ten node
			// timeouts; a test kills masters to see a failover, never to see one refused.
			"--cluster-replica-validity-factor", "0",
			// A master waits 5s by default before a diskless full sync, in case more
			// replicas come; here that would only delay every replica's first sync.
			"--repl-diskless-sync-delay", "0",
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

// converged reports nil once the running nodes are ready for a test (see ready).
func (c *Cluster) converged(ctx context.Context) error {
	_, err := c.ready(ctx)
	return err
}

// view is the cluster as all its running nodes agree on it.
type view struct {
	masterOf []int       // by node index: the index of its master, or -1 for a master
	slots    []slotRange // sorted
}

// ready returns the view of the running nodes once each says cluster_state:ok, knows all
// nodes, maps every slot to the same master, agrees on who replicates whom, and each replica
// has its link to its master up: before that a client may be sent round in redirections, and
// a master killed may not be failed over. Killed nodes are left out, so that after a failover
// the survivors can be ready again.
func (c *Cluster) ready(ctx context.Context) (view, error) {
	roles, err := c.roles(ctx)
	if err != nil {
		return view{}, err
	}
	v := view{masterOf: roles}
	first := -1
	for i, a := range c.admin {
		if !c.nodes[i].running() {
			continue
		}
		info, err := a.ClusterInfo(ctx).Result()
		if err != nil {
			return view{}, fmt.Errorf("cluster info of %s: %w", c.nodes[i].Addr(), err)
		}
		if st := infoField(info, "cluster_state"); st != "ok" {
			return view{}, fmt.Errorf("%s: cluster_state:%s", c.nodes[i].Addr(), st)
		}
		if n := infoField(info, "cluster_known_nodes"); n != strconv.Itoa(len(c.nodes)) {
			return view{}, fmt.Errorf("%s knows %s nodes, want %d", c.nodes[i].Addr(), n, len(c.nodes))
		}
		slots, err := c.slots(ctx, i)
		if err != nil {
			return view{}, err
		}
		if first < 0 {
			first, v.slots = i, slots
		} else if !slices.EqualFunc(v.slots, slots, sameRange) {
			return view{}, fmt.Errorf("%s and %s disagree on the slot map", c.nodes[first].Addr(), c.nodes[i].Addr())
		}
		if roles[i] >= 0 {
			repl, err := a.Info(ctx, "replication").Result()
			if err != nil {
				return view{}, fmt.Errorf("info replication of %s: %w", c.nodes[i].Addr(), err)
			}
			if st := infoField(repl, "master_link_status"); st != "up" {
				return view{}, fmt.Errorf("replica %s: master_link_status:%s", c.nodes[i].Addr(), st)
			}
		}
	}
	return v, nil
}

// roles returns, by node index, the index of each node's master or -1 for a master, once
// every running node's CLUSTER NODES says the same and each running node's own INFO agrees:
// a node promoted or reconfigured a moment ago may not have told the others yet.
func (c *Cluster) roles(ctx context.Context) ([]int, error) {
	var agreed []int
	first := -1
	for i, a := range c.admin {
		if !c.nodes[i].running() {
			continue
		}
		text, err := a.ClusterNodes(ctx).Result()
		if err != nil {
			return nil, fmt.Errorf("cluster nodes of %s: %w", c.nodes[i].Addr(), err)
		}
		roles, err := c.parseNodes(text)
		if err != nil {
			return nil, fmt.Errorf("cluster nodes of %s: %w", c.nodes[i].Addr(), err)
		}
		if first < 0 {
			first, agreed = i, roles
		} else if !slices.Equal(agreed, roles) {
			return nil, fmt.Errorf("%s and %s disagree on who replicates whom", c.nodes[first].Addr(), c.nodes[i].Addr())
		}
	}
	if first < 0 {
		return nil, errors.New("no node running")
	}
	for i, a := range c.admin {
		if !c.nodes[i].running() {
			continue
		}
		info, err := a.Info(ctx, "replication").Result()
		if err != nil {
			return nil, fmt.Errorf("info replication of %s: %w", c.nodes[i].Addr(), err)
		}
		role, port := infoField(info, "role"), infoField(info, "master_port")
		switch m := agreed[i]; {
		case m < 0 && role != "master":
			return nil, fmt.Errorf("the cluster has %s as a master, it says role:%s", c.nodes[i].Addr(), role)
		case m >= 0 && (role != "slave" || port != strconv.Itoa(c.nodes[m].Port())):
			return nil, fmt.Errorf("the cluster has %s as a replica of %s, it says role:%s master_port:%s",
				c.nodes[i].Addr(), c.nodes[m].Addr(), role, port)
		}
	}
	return agreed, nil
}

// parseNodes reads the output of CLUSTER NODES into the master of each node, by index, -1
// for a master. A node it does not know (one still in handshake, with a made-up ID) or one
// missing is an error: the cluster has not settled yet.
func (c *Cluster) parseNodes(text string) ([]int, error) {
	const unknown = -2
	roles := make([]int, len(c.nodes))
	for i := range roles {
		roles[i] = unknown
	}
	for line := range strings.Lines(text) {
		// <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot>...
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		i := slices.Index(c.ids, f[0])
		if i < 0 {
			return nil, fmt.Errorf("unknown node %s (%s, %s)", f[0], f[1], f[2])
		}
		if f[3] == "-" {
			roles[i] = -1
			continue
		}
		m := slices.Index(c.ids, f[3])
		if m < 0 {
			return nil, fmt.Errorf("%s replicates unknown node %s", c.nodes[i].Addr(), f[3])
		}
		roles[i] = m
	}
	if i := slices.Index(roles, unknown); i >= 0 {
		return nil, fmt.Errorf("%s not listed", c.nodes[i].Addr())
	}
	return roles, nil
}

// slotRange is a range of slots and the id of the master serving it, in one node's view.
type slotRange struct {
	start, end int
	master     string
}

// slots returns node i's view of the slot map, sorted (CLUSTER SHARDS: a shard's serving
// master is its node with the master role, the one not failed if a failed one is listed).
func (c *Cluster) slots(ctx context.Context, i int) ([]slotRange, error) {
	shards, err := c.admin[i].ClusterShards(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster shards of %s: %w", c.nodes[i].Addr(), err)
	}
	var out []slotRange
	for _, sh := range shards {
		master := ""
		for _, n := range sh.Nodes {
			if n.Role == "master" && (master == "" || n.Health != "fail") {
				master = n.ID
			}
		}
		for _, r := range sh.Slots {
			out = append(out, slotRange{start: int(r.Start), end: int(r.End), master: master})
		}
	}
	slices.SortFunc(out, func(a, b slotRange) int { return a.start - b.start })
	return out, nil
}

func sameRange(a, b slotRange) bool { return a == b && a.master != "" }

// Nodes returns the cluster's nodes, masters and replicas, so a test can kill, pause or
// inspect one of them; the indices are those SlotOwner, Masters and KillMaster return and
// MigrateSlot and KillMaster take. A node keeps its index whatever its role becomes.
func (c *Cluster) Nodes() []*Server { return slices.Clone(c.nodes) }

// URL is the redis-cluster:// URL of the cluster, as the runner takes it. It lists every
// node, replicas and killed ones too: they are only seeds, from any of which a client learns
// the current masters, so a URL taken before a failover still works after it.
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
	var roles []int
	err := poll(ctx, 20*time.Millisecond, func(ctx context.Context) error {
		var err error
		roles, err = c.roles(ctx)
		return err
	})
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
	var roles []int
	err := poll(ctx, 20*time.Millisecond, func(ctx context.Context) error {
		var err error
		roles, err = c.roles(ctx)
		return err
	})
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
