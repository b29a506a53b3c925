package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Outcome is how an upstream occurrence must end for an after block to run its job.
type Outcome string

// The outcomes an after block may wait for.
const (
	// OnSuccess: the upstream run succeeded.
	OnSuccess Outcome = "success"
	// OnFailure: the upstream run failed for good (failed or abandoned; a failed attempt
	// that is retried has not ended).
	OnFailure Outcome = "failure"
	// OnAlways: the upstream run ended either way.
	OnAlways Outcome = "always"
)

// Matches reports whether an upstream run that ended with success (true) or failure
// (false) satisfies o.
func (o Outcome) Matches(success bool) bool {
	return o == OnAlways || (o == OnSuccess) == success
}

// After is one after block of a job: the job runs when an occurrence of Job ends as On
// says (and, with several after blocks, once every one of them is satisfied for the same
// scheduled instant).
type After struct {
	// Job is the upstream job's name, the block's label.
	Job string
	// On is the outcome of the upstream run that counts; OnSuccess by default.
	On Outcome
	// LabelRange is the range of the upstream's name, for diagnostics about it.
	LabelRange hcl.Range
	// DeclRange is the range of the block header.
	DeclRange hcl.Range
}

func afterSchema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "on"}}}
}

// decodeAfter decodes an after block of the job named job.
func decodeAfter(b *hcl.Block, job string) (After, hcl.Diagnostics) {
	a := After{Job: b.Labels[0], On: OnSuccess, LabelRange: b.LabelRanges[0], DeclRange: b.DefRange}
	diags := nameDiags("job", a.Job, checkJobName, a.LabelRange)
	if a.Job == job {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Job after itself",
			Detail:   fmt.Sprintf("Job %q cannot run after its own runs: each would start another, for ever. Give it a schedule instead.", job),
			Subject:  a.LabelRange.Ptr(),
		})
	}
	content, d := b.Body.Content(afterSchema())
	diags = append(diags, d...)
	if content == nil {
		return a, diags
	}
	if attr := content.Attributes["on"]; attr != nil {
		s, d := stringValue(attr)
		diags = append(diags, d...)
		switch o := Outcome(s); {
		case d.HasErrors():
		case o == OnSuccess || o == OnFailure || o == OnAlways:
			a.On = o
		default:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown outcome",
				Detail:   fmt.Sprintf("%q is not an outcome an after block can wait for; use \"success\", \"failure\" or \"always\".", s),
				Subject:  attr.Expr.Range().Ptr(),
			})
		}
	}
	return a, diags
}

// checkAfter checks the after blocks of a job set whose names are unique: every upstream
// exists, and no job runs after itself through others. It needs the whole set, so the
// merge of all files calls it.
func checkAfter(jobs []*Job) hcl.Diagnostics {
	byName := make(map[string]*Job, len(jobs))
	for _, j := range jobs {
		byName[j.Name] = j
	}
	var diags hcl.Diagnostics
	for _, j := range jobs {
		for _, a := range j.After {
			if _, ok := byName[a.Job]; ok || a.Job == j.Name {
				continue
			}
			detail := fmt.Sprintf("Job %q runs after %q, but no job of that name is defined in any file.", j.Name, a.Job)
			if near := nearNames(a.Job, byName); len(near) > 0 {
				detail += " Did you mean " + strings.Join(near, " or ") + "?"
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown upstream job",
				Detail:   detail,
				Subject:  a.LabelRange.Ptr(),
			})
		}
	}
	return append(diags, cycles(jobs, byName)...)
}

// cycles finds the dependency cycles of jobs by a depth-first walk along after blocks,
// from each job in name order. A cycle is found once, when the walk takes the after block
// that leads back onto its own path, and reported there: that block closes it. The cycle
// is named in the order its jobs would run, each after the one before it.
func cycles(jobs []*Job, byName map[string]*Job) hcl.Diagnostics {
	const (
		unseen = iota
		onPath
		done
	)
	state := make(map[string]int, len(jobs))
	var path []string
	var diags hcl.Diagnostics
	var walk func(j *Job)
	walk = func(j *Job) {
		state[j.Name] = onPath
		path = append(path, j.Name)
		for _, a := range j.After {
			up, ok := byName[a.Job]
			if !ok || a.Job == j.Name { // reported on its own
				continue
			}
			switch state[a.Job] {
			case unseen:
				walk(up)
			case onPath:
				// The path runs downstream to upstream; the cycle runs the other way.
				start := slices.Index(path, a.Job)
				names := []string{a.Job}
				for i := len(path) - 1; i > start; i-- {
					names = append(names, path[i])
				}
				names = append(names, a.Job)
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Dependency cycle",
					Detail: fmt.Sprintf("Job %q runs after %q, which closes the cycle %s: each job runs after the one before it, so none would ever start. Remove one of the after blocks.",
						j.Name, a.Job, strings.Join(names, " → ")),
					Subject: a.DeclRange.Ptr(),
				})
			}
		}
		path = path[:len(path)-1]
		state[j.Name] = done
	}
	for _, j := range jobs {
		if state[j.Name] == unseen {
			walk(j)
		}
	}
	return diags
}

// nearNames are the quoted names of byName within a small edit distance of name, nearest
// first, at most three: the likely typos.
func nearNames(name string, byName map[string]*Job) []string {
	type near struct {
		name string
		d    int
	}
	var ns []near
	for n := range byName {
		if d := editDistance(name, n); d <= max(2, len(name)/4) {
			ns = append(ns, near{n, d})
		}
	}
	slices.SortFunc(ns, func(a, b near) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.name, b.name)
	})
	var out []string
	for i := 0; i < len(ns) && i < 3; i++ {
		out = append(out, fmt.Sprintf("%q", ns[i].name))
	}
	return out
}

// editDistance is the Levenshtein distance of a and b, in bytes: job names are ASCII.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// never is the schedule of a job that only runs after others: it is never due.
type never struct{}

func (never) Next(time.Time) time.Time { return time.Time{} }
