package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cronfleet/cronfleet/internal/queue"
)

// A job's broadcast and shards attributes split each of its occurrences into parts (see
// internal/queue, fanout.go): the occurrence itself is decided as a whole (pause, catch-up,
// overlap, max_concurrent, priority, calendars), and only once it is claimed do its parts
// replace it. So overlap and max_concurrent count occurrences, not parts: the occurrence
// holds its job's overlap slot, and counts under max_concurrent, until its last part ended.
// The one policy that cannot apply is cancel_other: a newer occurrence could not stop parts
// that other nodes run, and would only wait for them, which buffer_one already says.

// decodeFanOut decodes a job's broadcast and shards attributes into j, after its overlap.
func decodeFanOut(j *Job, attrs hcl.Attributes) hcl.Diagnostics {
	var diags hcl.Diagnostics
	b, s := attrs["broadcast"], attrs["shards"]
	if b != nil {
		v, d := value(b, cty.Bool)
		diags = append(diags, d...)
		if !d.HasErrors() {
			j.Broadcast = v.True()
		}
	}
	if s != nil {
		n, d := intValue(s, 2, MaxShards)
		diags = append(diags, d...)
		j.Shards = n
	}
	if j.Broadcast && j.Shards > 0 {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "broadcast and shards together",
			Detail:   fmt.Sprintf("Job %q sets both broadcast and shards: broadcast makes one part per live node, shards a fixed number of parts. Keep one.", j.Name),
			Subject:  s.Expr.Range().Ptr(),
			Context:  hcl.RangeOver(b.Range, s.Range).Ptr(),
		})
		j.Shards = 0
	}
	if j.Fanned() && j.Policy.Overlap == queue.OverlapCancelOther {
		a := s
		if j.Broadcast {
			a = b
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "overlap \"cancel_other\" with parts",
			Detail:   fmt.Sprintf("Job %q runs its occurrences as parts on several nodes, which a newer occurrence cannot cancel; use overlap \"buffer_one\" to run the newest next, or \"skip\".", j.Name),
			Subject:  a.Range.Ptr(),
		})
	}
	return diags
}
