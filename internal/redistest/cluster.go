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

// busOffset separates a cluster node's client port from its cluster bus port.
const busOffset = 10000

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
		if st := InfoField(info, "cluster_state"); st != "ok" {
			return view{}, fmt.Errorf("%s: cluster_state:%s", c.nodes[i].Addr(), st)
		}
		if n := InfoField(info, "cluster_known_nodes"); n != strconv.Itoa(len(c.nodes)) {
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
			if st := InfoField(repl, "master_link_status"); st != "up" {
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
		role, port := InfoField(info, "role"), InfoField(info, "master_port")
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
