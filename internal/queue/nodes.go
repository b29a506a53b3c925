package queue

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

//go:embed lua/announce.lua
var announceSrc string

// Node is what a node of the fleet says of itself.
type Node struct {
	// Name is the node's name (its -node flag).
	Name string `json:"name"`
	// Version is the runner's version.
	Version string `json:"version"`
	// JobSetHash is the hash of the node's job set (config.Config.SetHash): nodes whose
	// hashes differ were given different job files.
	JobSetHash string `json:"job_set_hash"`
	// Jobs is how many jobs the node's job set has.
	Jobs int `json:"jobs"`
	// Started is when the node started, by its own clock.
	Started time.Time `json:"started_at"`
	// Labels are the node's labels (its -label flags, and its name as "node"), which
	// jobs' constraints select nodes by.
	Labels map[string]string `json:"labels,omitempty"`
}

// NodeLabels are the node's labels; a node that announced none (a runner from before
// labels) has its name, which every node has as a label.
func (n Node) NodeLabels() map[string]string {
	if n.Labels == nil {
		return map[string]string{"node": n.Name}
	}
	return n.Labels
}

// NodeSeen is a node with when Redis last heard from it.
type NodeSeen struct {
	Node
	// Seen is when the node last announced itself, on Redis' clock.
	Seen time.Time `json:"last_seen"`
	// Age is how long ago that was, by Redis' clock when Nodes asked.
	Age time.Duration `json:"-"`
}

// NodeTTL is how long after its last announcement a node counts as alive: nodes announce
// themselves several times within it.
const NodeTTL = 10 * time.Second

// forgetNodes is how long a node that stopped announcing itself (it crashed, or its host
// went away) is still listed.
const forgetNodes = 24 * time.Hour

// Announce records that n is alive now, by Redis' clock. A node calls it at least once per
// NodeTTL.
func (q *Queue) Announce(ctx context.Context, n Node) error {
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("queue: announce %s: %w", n.Name, err)
	}
	return q.announce(ctx, n.Name, string(b))
}

// Depart removes the node name from the fleet's list: it stopped cleanly.
func (q *Queue) Depart(ctx context.Context, name string) error {
	return q.announce(ctx, name, "")
}

func (q *Queue) announce(ctx context.Context, name, node string) error {
	k := namespaceKeys(q.cfg.Namespace)
	_, err := q.evalAll(ctx, []call{{script: q.announceScript, keys: []string{k.nodes(), k.seen()},
		args: []any{name, node, forgetNodes.Milliseconds()}, shard: -1}})
	if err != nil {
		return fmt.Errorf("queue: announce %s: %w", name, err)
	}
	return nil
}

// Nodes returns the nodes that announced themselves, with when Redis last heard from each.
func (q *Queue) Nodes(ctx context.Context) ([]NodeSeen, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	k := namespaceKeys(q.cfg.Namespace)
	pipe := q.rdb.Pipeline()
	nodes := pipe.HGetAll(ctx, k.nodes())
	seen := pipe.HGetAll(ctx, k.seen())
	now := pipe.Time(ctx)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("queue: nodes: %w", q.callError(err))
	}
	var out []NodeSeen
	for name, raw := range nodes.Val() {
		n, err := decodeNode(raw, seen.Val()[name], now.Val())
		if err != nil {
			return nil, fmt.Errorf("queue: node %s: %w", name, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// decodeNode reads a node as the nodes hash keeps it (JSON), with seen, its field of the seen
// hash (ms, Redis' clock; a node without one has no Seen), and now, Redis' clock.
func decodeNode(raw, seen string, now time.Time) (NodeSeen, error) {
	var n NodeSeen
	if err := json.Unmarshal([]byte(raw), &n.Node); err != nil {
		return NodeSeen{}, err
	}
	if ms, err := strconv.ParseInt(seen, 10, 64); err == nil {
		n.Seen = time.UnixMilli(ms)
		n.Age = now.Sub(n.Seen)
	}
	return n, nil
}
