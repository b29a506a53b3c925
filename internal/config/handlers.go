package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// HandlerAttribute is one attribute a plugin declares for its handler block. It mirrors the
// plugin SDK's schema without importing it: the config stays independent of how plugins
// are run.
type HandlerAttribute struct {
	// Name is the attribute's name.
	Name string
	// Type is an HCL type expression: "string", "list(string)", "map(string)", "any"…
	Type string
	// Required attributes must be set.
	Required bool
	// Default is the JSON value used when the attribute is left out; nil for none.
	Default []byte
}

// HandlerSchemas returns the attributes of a plugin's handler block, or an error if the
// plugin cannot tell (it does not start, say).
type HandlerSchemas func(plugin string) ([]HandlerAttribute, error)

// DecodeHandlers decodes every job's handler block, and its alert's, against its plugin's
// schema, so that a wrong type, a missing required attribute or an unknown attribute is
// reported at its file:line:col exactly like a core attribute, before anything runs. The
// decoded settings (defaults filled in) replace Handler.Settings, and each job's Hash is
// recomputed. The blocks are decoded in parallel; schemas is called once per plugin, from
// one goroutine.
func (c *Config) DecodeHandlers(schemas HandlerSchemas) hcl.Diagnostics {
	slots := c.handlers()
	specs := map[string]hcldec.Spec{}
	failed := map[string]bool{}
	perSlot := make([]hcl.Diagnostics, len(slots))
	var todo []int // the slots whose plugin has a schema
	for i, s := range slots {
		name := s.h.Plugin
		if _, ok := specs[name]; !ok && !failed[name] {
			attrs, err := schemas(name)
			var spec hcldec.Spec
			if err == nil {
				spec, err = handlerSpec(attrs)
			}
			if err != nil {
				failed[name] = true
				perSlot[i] = hcl.Diagnostics{unavailable("Plugin schema unavailable", *s.h, err)}
				continue
			}
			specs[name] = spec
		}
		if !failed[name] {
			todo = append(todo, i)
		}
	}
	parallel(len(todo), func(k int) {
		s := slots[todo[k]]
		perSlot[todo[k]] = c.decodeHandler(s.h, specs[s.h.Plugin])
	})
	var diags hcl.Diagnostics
	for _, d := range perSlot {
		diags = append(diags, d...)
	}
	// A job's hash covers both of its handlers: computed once both are decoded.
	parallel(len(c.Jobs), func(i int) {
		if j := c.Jobs[i]; j.Handler.decoded || (j.Alert != nil && j.Alert.Handler.decoded) {
			j.Hash = hashJob(j)
		}
	})
	// Jobs written alike (one script for many tenants) share one copy of their settings.
	shared := map[string]json.RawMessage{}
	for _, i := range todo {
		h := slots[i].h
		if !h.decoded {
			continue
		}
		if s, ok := shared[string(h.Settings)]; ok {
			h.Settings = s
		} else {
			shared[string(h.Settings)] = h.Settings
		}
	}
	return diags
}

// slot is one handler block of a job: its own, or its alert's.
type slot struct {
	job   *Job
	h     *Handler
	alert bool
}

// handlers lists the handler blocks of every job, in job order, a job's own before its
// alert's.
func (c *Config) handlers() []slot {
	out := make([]slot, 0, len(c.Jobs))
	for _, j := range c.Jobs {
		out = append(out, slot{job: j, h: &j.Handler})
		if j.Alert != nil {
			out = append(out, slot{job: j, h: &j.Alert.Handler, alert: true})
		}
	}
	return out
}

// decodeHandler decodes the handler block h against spec.
func (c *Config) decodeHandler(h *Handler, spec hcldec.Spec) hcl.Diagnostics {
	val, diags := hcldec.Decode(h.Body, spec, c.eval)
	// HCL reports unsupported arguments in map order; sorted, the output is the same on
	// every run.
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		if a.Subject == nil || b.Subject == nil {
			return 0
		}
		return a.Subject.Start.Byte - b.Subject.Start.Byte
	})
	if !diags.HasErrors() {
		diags = append(diags, nullElements(h.Body, spec, val)...)
	}
	if diags.HasErrors() {
		return diags
	}
	raw, err := ctyjson.Marshal(val, val.Type())
	if err != nil {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid handler setting",
			Detail:   fmt.Sprintf("The handler settings cannot be encoded as JSON: %s.", err),
			Subject:  h.DefRange.Ptr(),
		})
	}
	h.Settings = bytes.Clone(raw) // not the encoder's buffer, which is larger
	h.decoded = true
	return diags
}

// handlerSpec turns a plugin's attributes into an hcldec spec: an object whose unknown
// attributes are errors, as in the rest of the job file.
func handlerSpec(attrs []HandlerAttribute) (hcldec.Spec, error) {
	spec := hcldec.ObjectSpec{}
	for _, a := range attrs {
		expr, diags := hclsyntax.ParseExpression([]byte(a.Type), "schema", hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("attribute %q has an invalid type %q", a.Name, a.Type)
		}
		ty, diags := typeexpr.TypeConstraint(expr)
		if diags.HasErrors() {
			return nil, fmt.Errorf("attribute %q has an invalid type %q", a.Name, a.Type)
		}
		var s hcldec.Spec = &hcldec.AttrSpec{Name: a.Name, Type: ty, Required: a.Required}
		if a.Default != nil {
			dty := ty
			if dty == cty.DynamicPseudoType {
				implied, err := ctyjson.ImpliedType(a.Default)
				if err != nil {
					return nil, fmt.Errorf("attribute %q has an invalid default %s: %w", a.Name, a.Default, err)
				}
				dty = implied
			}
			def, err := ctyjson.Unmarshal(a.Default, dty)
			if err != nil {
				return nil, fmt.Errorf("attribute %q has an invalid default %s: %w", a.Name, a.Default, err)
			}
			s = &hcldec.DefaultSpec{Primary: s, Default: &hcldec.LiteralSpec{Value: def}}
		}
		spec[a.Name] = s
	}
	return spec, nil
}

// nullElements reports, at each attribute of spec that is a list or a map, a null element
// of its value in val, decoded from body. HCL lets a list(string) or map(string) hold
// nulls, but the settings of a handler cannot: the plugin SDK refuses them
// (sdk.Schema.CheckSettings, what plugin authors test against), and a handler decoding
// into a []string or map[string]string would silently read "" instead.
func nullElements(body hcl.Body, spec hcldec.Spec, val cty.Value) hcl.Diagnostics {
	obj, ok := spec.(hcldec.ObjectSpec)
	if !ok || val.IsNull() || !val.IsKnown() {
		return nil
	}
	var diags hcl.Diagnostics
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := obj[name]
		if d, ok := s.(*hcldec.DefaultSpec); ok {
			s = d.Primary
		}
		a, ok := s.(*hcldec.AttrSpec)
		if !ok || !(a.Type.IsListType() || a.Type.IsMapType() || a.Type.IsSetType()) || !val.Type().HasAttribute(name) {
			continue
		}
		v := val.GetAttr(name)
		if v.IsNull() || !v.IsKnown() {
			continue
		}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if !e.IsNull() {
				continue
			}
			key := "" // a set's elements have no key
			switch {
			case a.Type.IsMapType():
				key = fmt.Sprintf(" %q", k.AsString())
			case a.Type.IsListType():
				key = " " + k.AsBigFloat().Text('f', -1)
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Incorrect attribute value type",
				Detail:   fmt.Sprintf("Inappropriate value for attribute %q: element%s is null, and a %s cannot hold null.", name, key, a.Type.FriendlyName()),
				Subject:  hcldec.SourceRange(body, a).Ptr(),
			})
			break
		}
	}
	return diags
}
