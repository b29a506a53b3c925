package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// TestReportDrift: a node logs the live nodes that run another job set once when they
// appear or change, not at every announcement, and once when they agree again; a node that
// is no longer alive does not count.
func TestReportDrift(t *testing.T) {
	var buf bytes.Buffer
	e := &Engine{log: slog.New(slog.NewTextHandler(&buf, nil))}
	self := queue.Node{Name: "a", JobSetHash: "h1"}
	node := func(name, hash string, age time.Duration) queue.NodeSeen {
		return queue.NodeSeen{Node: queue.Node{Name: name, JobSetHash: hash}, Age: age}
	}
	steps := []struct {
		nodes []queue.NodeSeen
		want  string // the log line's message, or "" for none
	}{
		{[]queue.NodeSeen{node("a", "h1", 0), node("b", "h1", time.Second)}, ""},
		{[]queue.NodeSeen{node("a", "h1", 0), node("b", "h1", 0), node("c", "h2", 0)}, "nodes run a different job set"},
		{[]queue.NodeSeen{node("a", "h1", 0), node("b", "h1", 0), node("c", "h2", 0)}, ""},
		{[]queue.NodeSeen{node("a", "h1", 0), node("b", "h3", 0), node("c", "h2", 0)}, "nodes run a different job set"},
		{[]queue.NodeSeen{node("a", "h1", 0), node("b", "h1", 0), node("c", "h2", time.Hour)}, "job sets agree again"},
		{[]queue.NodeSeen{node("a", "h1", 0), node("b", "h1", 0)}, ""},
	}
	was := ""
	for i, s := range steps {
		buf.Reset()
		was = e.reportDrift(self, s.nodes, was)
		got := strings.TrimSpace(buf.String())
		if s.want == "" && got != "" || s.want != "" && (strings.Count(got, "\n") > 0 || !strings.Contains(got, s.want)) {
			t.Errorf("step %d: logged %q, want %q", i, got, s.want)
		}
	}
	buf.Reset()
	e.reportDrift(self, steps[3].nodes, "")
	if got := buf.String(); !strings.Contains(got, "nodes=b,c") {
		t.Errorf("the warning %q does not name the nodes that differ", got)
	}
}
