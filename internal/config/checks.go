package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// HandlerProblem is one mistake a plugin found in a handler block's settings.
type HandlerProblem struct {
	// Attribute names the attribute at fault; empty for the block as a whole.
	Attribute string
	// Message says what is wrong.
	Message string
}

// HandlerChecks asks a plugin about one handler block's decoded settings. A plugin
// that has no checks of its own answers with no problems. It is called from several
// goroutines at once.
type HandlerChecks func(plugin string, settings json.RawMessage) ([]HandlerProblem, error)

// checkConcurrency is how many checks CheckHandlers has in flight: a check is a round trip
// to a plugin process, so one at a time would leave both sides waiting on each other.
const checkConcurrency = 16

// CheckHandlers asks each job's plugin to check its handler block's settings, after
// DecodeHandlers, for mistakes a schema cannot express (one of two attributes, a URL that
// must parse). Blocks that DecodeHandlers refused are left out: their errors are known. Each problem is reported at its attribute's value, or at the block when it
// names no attribute that the block sets, so `runner validate` locates it like any other.
//
// A check depends on the settings alone (a plugin's Check has no side effects), so a plugin
// is asked once about equal settings, however many jobs share them, and the questions are
// asked concurrently. A plugin that cannot answer is reported once, at the first job (in
// name order) whose check it did not answer, and is asked nothing more.
func (c *Config) CheckHandlers(check HandlerChecks) hcl.Diagnostics {
	type question struct{ plugin, settings string }
	type answer struct {
		problems []HandlerProblem
		err      error
	}
	asked := map[question]int{} // → index in questions
	var questions []question
	slots := c.handlers()
	which := make([]int, len(slots)) // slot → its question, or -1
	for i, s := range slots {
		which[i] = -1
		if !s.h.decoded {
			continue
		}
		q := question{s.h.Plugin, string(s.h.Settings)}
		k, ok := asked[q]
		if !ok {
			k = len(questions)
			asked[q] = k
			questions = append(questions, q)
		}
		which[i] = k
	}
	answers := make([]answer, len(questions))
	var mu sync.Mutex
	down := map[string]error{} // plugin → why it could not answer
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(checkConcurrency, len(questions)) {
		wg.Go(func() {
			for k := int(next.Add(1)) - 1; k < len(questions); k = int(next.Add(1)) - 1 {
				q := questions[k]
				mu.Lock()
				err := down[q.plugin]
				mu.Unlock()
				if err != nil {
					answers[k].err = err
					continue
				}
				problems, err := check(q.plugin, json.RawMessage(q.settings))
				answers[k] = answer{problems, err}
				if err != nil {
					mu.Lock()
					if down[q.plugin] == nil {
						down[q.plugin] = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()

	var diags hcl.Diagnostics
	failed := map[string]bool{}
	for i, s := range slots {
		name := s.h.Plugin
		if failed[name] || which[i] < 0 {
			continue
		}
		a := answers[which[i]]
		if a.err != nil {
			failed[name] = true
			diags = append(diags, unavailable("Plugin check unavailable", *s.h, a.err))
			continue
		}
		what := "handler"
		if s.alert {
			what = "alert handler"
		}
		for _, p := range a.problems {
			subject := s.h.DefRange
			detail := strings.TrimSuffix(p.Message, ".")
			if p.Attribute != "" {
				detail = fmt.Sprintf("%s: %s", p.Attribute, detail)
				if r, ok := attributeRange(s.h.Body, p.Attribute); ok {
					subject = r
				}
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid handler setting",
				Detail:   fmt.Sprintf("The %q %s of job %q refuses its settings: %s.", name, what, s.job.Name, detail),
				Subject:  subject.Ptr(),
			})
		}
	}
	return diags
}

// attributeRange finds the value of the named attribute in a handler block's body.
func attributeRange(body hcl.Body, name string) (hcl.Range, bool) {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return hcl.Range{}, false
	}
	a, ok := sb.Attributes[name]
	if !ok {
		return hcl.Range{}, false
	}
	return a.Expr.Range(), true
}

// unavailable is the error of a handler block its plugin could not answer about (it does
// not start, say), at the plugin's name.
func unavailable(summary string, h Handler, err error) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf("The settings of the %q handler cannot be checked: %s.", h.Plugin, err),
		Subject:  h.LabelRange.Ptr(),
	}
}
