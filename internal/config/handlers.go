package config

import (
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

// DecodeHandlers decodes every job's handler block against its plugin's schema, so that a
// wrong type, a missing required attribute or an unknown attribute is reported at its
// file:line:col exactly like a core attribute, before anything runs. The decoded settings
// (defaults filled in) replace Handler.Settings, and each job's Hash is recomputed.
func (c *Config) DecodeHandlers(schemas HandlerSchemas) hcl.Diagnostics {
	var diags hcl.Diagnostics
	specs := map[string]hcldec.Spec{}
	failed := map[string]bool{}
	for _, j := range c.Jobs {
		name := j.Handler.Plugin
		spec, ok := specs[name]
		if !ok && !failed[name] {
			attrs, err := schemas(name)
			if err == nil {
				spec, err = handlerSpec(attrs)
			}
			if err != nil {
				failed[name] = true
				diags = append(diags, unavailable("Plugin schema unavailable", j.Handler, err))
				continue
			}
			specs[name] = spec
		}
		if failed[name] {
			continue
		}
		val, d := hcldec.Decode(j.Handler.Body, spec, c.eval)
		if !d.HasErrors() {
			d = append(d, nullElements(j.Handler.Body, spec, val)...)
		}
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		raw, err := ctyjson.Marshal(val, val.Type())
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid handler setting",
				Detail:   fmt.Sprintf("The handler settings cannot be encoded as JSON: %s.", err),
				Subject:  j.Handler.DefRange.Ptr(),
			})
			continue
		}
		j.Handler.Settings = raw
		j.Handler.decoded = true
		j.Hash = hashJob(j)
	}
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
