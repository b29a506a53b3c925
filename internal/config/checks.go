package config

import (
	"encoding/json"
	"fmt"
	"strings"

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
// that has no checks of its own answers with no problems.
type HandlerChecks func(plugin string, settings json.RawMessage) ([]HandlerProblem, error)

// CheckHandlers asks each job's plugin to check its handler block's settings, after
// DecodeHandlers, for mistakes a schema cannot express (one of two attributes, a URL that
// must parse). Blocks that DecodeHandlers refused are left out: their errors are known. Each problem is reported at its attribute's value, or at the block when it
// names no attribute that the block sets, so `runner validate` locates it like any other.
func (c *Config) CheckHandlers(check HandlerChecks) hcl.Diagnostics {
	var diags hcl.Diagnostics
	failed := map[string]bool{}
	for _, j := range c.Jobs {
		name := j.Handler.Plugin
		if failed[name] || !j.Handler.decoded {
			continue
		}
		problems, err := check(name, j.Handler.Settings)
		if err != nil {
			failed[name] = true
			diags = append(diags, unavailable("Plugin check unavailable", j.Handler, err))
			continue
		}
		for _, p := range problems {
			subject := j.Handler.DefRange
			detail := strings.TrimSuffix(p.Message, ".")
			if p.Attribute != "" {
				detail = fmt.Sprintf("%s: %s", p.Attribute, detail)
				if r, ok := attributeRange(j.Handler.Body, p.Attribute); ok {
					subject = r
				}
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid handler setting",
				Detail:   fmt.Sprintf("The %q handler of job %q refuses its settings: %s.", name, j.Name, detail),
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
