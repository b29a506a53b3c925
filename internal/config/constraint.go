package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// NodeLabel is the label every node carries without being given it: its name (the -node
// flag), so that a job can be pinned to one node by a constraint like any other.
const NodeLabel = "node"

// Operator is how a constraint compares a node's label with its value.
type Operator string

// The operators of a constraint block.
const (
	// OpEqual: the node has the label, with the value.
	OpEqual Operator = "="
	// OpNotEqual: the node lacks the label or has another value, as a Kubernetes NotIn
	// selector reads it: "not in eu" includes nodes that name no region.
	OpNotEqual Operator = "!="
	// OpIn: the node has the label, with one of the values.
	OpIn Operator = "in"
)

// Constraint is one constraint block of a job: a node may run the job only if its labels
// satisfy every one of the job's constraints.
type Constraint struct {
	// Label is the node label compared.
	Label string
	// Operator compares it; OpEqual by default.
	Operator Operator
	// Values holds the value for OpEqual and OpNotEqual, the values for OpIn.
	Values []string
	// DeclRange is the range of the block header, for diagnostics about it.
	DeclRange hcl.Range
}

// Allows reports whether a node with labels satisfies c.
func (c Constraint) Allows(labels map[string]string) bool {
	v, ok := labels[c.Label]
	switch c.Operator {
	case OpNotEqual:
		return !ok || v != c.Values[0]
	case OpIn:
		return ok && slices.Contains(c.Values, v)
	default:
		return ok && v == c.Values[0]
	}
}

// String is the constraint as the logs, history and status show it: region = eu,
// region != eu, region in [eu, us].
func (c Constraint) String() string {
	if c.Operator == OpIn {
		return fmt.Sprintf("%s in [%s]", c.Label, strings.Join(c.Values, ", "))
	}
	return fmt.Sprintf("%s %s %s", c.Label, c.Operator, c.Values[0])
}

// Allows reports whether a node with labels may run j: its labels satisfy all of j's
// constraints (a job without constraints runs anywhere).
func (j *Job) Allows(labels map[string]string) bool {
	for _, c := range j.Constraints {
		if !c.Allows(labels) {
			return false
		}
	}
	return true
}

// Placement describes j's constraints for a person, joined by "and"; "" for none.
func (j *Job) Placement() string {
	s := make([]string, len(j.Constraints))
	for i, c := range j.Constraints {
		s[i] = c.String()
	}
	return strings.Join(s, " and ")
}

func constraintSchema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "label", Required: true},
		{Name: "value", Required: true},
		{Name: "operator"},
	}}
}

// decodeConstraint decodes a constraint block.
func decodeConstraint(b *hcl.Block) (Constraint, hcl.Diagnostics) {
	c := Constraint{Operator: OpEqual, DeclRange: b.DefRange}
	content, diags := b.Body.Content(constraintSchema())
	if content == nil || diags.HasErrors() {
		return c, diags
	}
	label, d := stringValue(content.Attributes["label"])
	diags = append(diags, d...)
	if !d.HasErrors() {
		if problem := CheckLabelKey(label); problem != "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid label",
				Detail:   fmt.Sprintf("The label %q is not a node label: %s.", label, problem),
				Subject:  content.Attributes["label"].Expr.Range().Ptr(),
			})
		}
		c.Label = label
	}
	if a := content.Attributes["operator"]; a != nil {
		op, d := stringValue(a)
		diags = append(diags, d...)
		switch o := Operator(op); {
		case d.HasErrors():
		case o == OpEqual || o == OpNotEqual || o == OpIn:
			c.Operator = o
		default:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown operator",
				Detail:   fmt.Sprintf("%q is not a constraint operator; use \"=\" (the default), \"!=\" or \"in\".", op),
				Subject:  a.Expr.Range().Ptr(),
			})
		}
	}
	a := content.Attributes["value"]
	if c.Operator == OpIn {
		vals, d := stringList(a)
		diags = append(diags, d...)
		if !d.HasErrors() && len(vals) == 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Empty value list",
				Detail:   "A constraint with operator \"in\" needs at least one value: with none, no node could run the job.",
				Subject:  a.Expr.Range().Ptr(),
			})
		}
		c.Values = vals
	} else {
		v, d := stringValue(a)
		diags = append(diags, d...)
		if !d.HasErrors() && strings.ContainsAny(v, " \t\r\n") {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid label value",
				Detail:   fmt.Sprintf("The value %q holds white space, which no node label can: a -label flag's value has none.", v),
				Subject:  a.Expr.Range().Ptr(),
			})
		}
		c.Values = []string{v}
	}
	return c, diags
}

// stringList decodes a list (or tuple) of strings.
func stringList(a *hcl.Attribute) ([]string, hcl.Diagnostics) {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return nil, diags
	}
	bad := func(problem string) ([]string, hcl.Diagnostics) {
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Incorrect attribute value type",
			Detail:   fmt.Sprintf("Inappropriate value for attribute %q: %s.", a.Name, problem),
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	if !v.IsWhollyKnown() || v.IsNull() || !(v.Type().IsListType() || v.Type().IsTupleType()) {
		return bad("a list of strings is required with operator \"in\", such as [\"eu\", \"us\"]")
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() || e.Type() != cty.String {
			return bad("every element must be a string")
		}
		out = append(out, e.AsString())
	}
	return out, diags
}

// CheckLabelKey says why key cannot be a node label's name, or returns "". Keys are
// letters, digits, '_', '.', '-' and '/', as Kubernetes label keys are, so that they read
// the same in flags, job files and logs.
func CheckLabelKey(key string) string {
	return checkToken(key, "_.-/", "'_', '.', '-' and '/'")
}

// ParseLabels reads node labels given as "KEY=VALUE" (the -label flag), adding the
// built-in NodeLabel with node's name. A malformed label, one given twice, or one that
// would replace the built-in is an error naming it.
func ParseLabels(node string, flags []string) (map[string]string, error) {
	labels := map[string]string{NodeLabel: node}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("label %q: want KEY=VALUE, such as region=eu", f)
		case CheckLabelKey(k) != "":
			return nil, fmt.Errorf("label %q: the key %s", f, CheckLabelKey(k))
		case v == "" || strings.ContainsAny(v, " \t\r\n"):
			return nil, fmt.Errorf("label %q: the value must be non-empty and hold no white space", f)
		case k == NodeLabel:
			return nil, fmt.Errorf("label %q: %q is the node's name, set by -node", f, NodeLabel)
		}
		if _, dup := labels[k]; dup {
			return nil, fmt.Errorf("label %q: %s is given twice", f, k)
		}
		labels[k] = v
	}
	return labels, nil
}
