package config

import (
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

func decodeHandler(b *hcl.Block, ev *hcl.EvalContext) (Handler, hcl.Diagnostics) {
	h := Handler{DefRange: b.DefRange, Body: b.Body}
	var diags hcl.Diagnostics
	if len(b.Labels) > 0 { // HCL drops handler blocks without a label
		h.Plugin, h.LabelRange = b.Labels[0], b.LabelRanges[0]
		diags = append(diags, nameDiags("plugin", h.Plugin, checkPluginName, h.LabelRange)...)
	}
	settings, d := settingsJSON(b.Body, ev)
	h.Settings = settings
	return h, append(diags, d...)
}

// settingsJSON evaluates the arguments of a handler body (with the functions of
// evalContext) and encodes them as one JSON object with sorted keys, so equal
// settings always encode, and hash, the same. DecodeHandlers later re-decodes
// the body against its plugin's schema.
func settingsJSON(body hcl.Body, ev *hcl.EvalContext) ([]byte, hcl.Diagnostics) {
	attrs, diags := body.JustAttributes()
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	// Evaluate in source order, so diagnostics come out in a stable order.
	slices.SortFunc(names, func(a, b string) int { return attrs[a].Range.Start.Byte - attrs[b].Range.Start.Byte })
	vals := make(map[string]cty.Value, len(attrs))
	for _, name := range names {
		a := attrs[name]
		v, d := a.Expr.Value(ev)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		if problem := checkSetting(v); problem != "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid handler setting",
				Detail:   fmt.Sprintf("The value of %q cannot be handed to a plugin: %s.", name, problem),
				Subject:  a.Expr.Range().Ptr(),
			})
			continue
		}
		vals[name] = v
	}
	if diags.HasErrors() {
		return nil, diags
	}
	// DecodeHandlers decodes the body again, against its plugin's schema. Each expression
	// stands for the value it evaluated to, as a literal with the expression's range: it
	// evaluates to the same value and is reported at the same place, and the syntax tree
	// under it, many times the size of the value, is not kept for every job.
	if sb, ok := body.(*hclsyntax.Body); ok {
		for name, a := range sb.Attributes {
			if v, ok := vals[name]; ok {
				a.Expr = &hclsyntax.LiteralValueExpr{Val: v, SrcRange: a.Expr.Range()}
			}
		}
	}
	obj := cty.ObjectVal(vals)
	raw, err := ctyjson.Marshal(obj, obj.Type())
	if err != nil {
		// checkSetting rejects everything Marshal refuses; this is a safety net.
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid handler setting",
			Detail:   fmt.Sprintf("The handler settings cannot be encoded as JSON: %s.", err),
			Subject:  body.MissingItemRange().Ptr(),
		})
		return nil, diags
	}
	return raw, diags
}

// checkSetting says why v cannot be encoded as JSON, or returns "".
func checkSetting(v cty.Value) string {
	var problem string
	_ = cty.Walk(v, func(_ cty.Path, v cty.Value) (bool, error) {
		switch {
		case problem != "":
		case !v.IsKnown():
			problem = "the value is not known"
		case v.IsMarked():
			problem = "the value is marked"
		case !v.IsNull() && v.Type() == cty.Number && !finite(v):
			problem = "a number is infinite or beyond the range of a 64-bit float"
		}
		return problem == "", nil
	})
	return problem
}
