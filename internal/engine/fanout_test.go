package engine

import (
	"slices"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// TestBroadcastNodes: a broadcast runs on the live nodes its constraints allow, this one
// always, each once, in name order; a node silent for longer than queue.NodeTTL is not live.
func TestBroadcastNodes(t *testing.T) {
	seen := func(name string, age time.Duration) queue.NodeSeen {
		return queue.NodeSeen{Node: queue.Node{Name: name}, Age: age}
	}
	job := &config.Job{Name: "j", Broadcast: true}
	for name, tc := range map[string]struct {
		nodes []queue.NodeSeen
		want  []string
	}{
		"alone, before its announcement": {nil, []string{"b"}},
		"three live":                     {[]queue.NodeSeen{seen("c", 0), seen("b", time.Second), seen("a", queue.NodeTTL)}, []string{"a", "b", "c"}},
		"one gone":                       {[]queue.NodeSeen{seen("a", queue.NodeTTL+time.Millisecond), seen("c", 0)}, []string{"b", "c"}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := broadcastNodes(job, "b", tc.nodes); !slices.Equal(got, tc.want) {
				t.Errorf("broadcastNodes = %v, want %v", got, tc.want)
			}
		})
	}
	eu := &config.Job{Name: "eu", Broadcast: true, Constraints: []config.Constraint{{Label: "region", Operator: config.OpEqual, Values: []string{"eu"}}}}
	labelled := func(name, region string) queue.NodeSeen {
		return queue.NodeSeen{Node: queue.Node{Name: name, Labels: map[string]string{"node": name, "region": region}}}
	}
	for name, tc := range map[string]struct {
		nodes []queue.NodeSeen
		want  []string
	}{
		"the eu ones":          {[]queue.NodeSeen{labelled("a", "eu"), labelled("c", "us"), labelled("d", "eu")}, []string{"a", "b", "d"}},
		"none but self":        {[]queue.NodeSeen{labelled("c", "us")}, []string{"b"}},
		"a node without label": {[]queue.NodeSeen{seen("a", 0)}, []string{"b"}},
	} {
		t.Run("constrained, "+name, func(t *testing.T) {
			if got := broadcastNodes(eu, "b", tc.nodes); !slices.Equal(got, tc.want) {
				t.Errorf("broadcastNodes = %v, want %v", got, tc.want)
			}
		})
	}
}
