package config

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The arguments of the schema are typed strictly: HCL would convert true or 30
// to a string, which turns a type mistake into a confusing "invalid duration".

// value evaluates the expression of a, without variables or functions, and
// checks it is a non-null value of type want.
func value(a *hcl.Attribute, want cty.Type) (cty.Value, hcl.Diagnostics) {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	var problem string
	switch {
	case !v.IsKnown():
		problem = "its value is not known"
	case v.IsNull():
		problem = "it must not be null"
	case !v.Type().Equals(want):
		problem = fmt.Sprintf("%s required, got %s", want.FriendlyName(), v.Type().FriendlyName())
	}
	if problem != "" {
		return cty.NilVal, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Incorrect attribute value type",
			Detail:   fmt.Sprintf("Inappropriate value for attribute %q: %s.", a.Name, problem),
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	return v, diags
}

func stringValue(a *hcl.Attribute) (string, hcl.Diagnostics) {
	v, diags := value(a, cty.String)
	if diags.HasErrors() {
		return "", diags
	}
	return v.AsString(), diags
}

// durationValue decodes a non-negative Go duration string such as "1h30m".
func durationValue(a *hcl.Attribute) (time.Duration, hcl.Diagnostics) {
	s, diags := stringValue(a)
	if diags.HasErrors() {
		return 0, diags
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid duration",
			Detail:   fmt.Sprintf("The value %q of %q is not a duration; use a number with a unit, such as \"90s\", \"20m\" or \"1h30m\".", s, a.Name),
			Subject:  a.Expr.Range().Ptr(),
		})
	case d < 0:
		return 0, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Negative duration",
			Detail:   fmt.Sprintf("The value %q of %q is negative; it must be zero or more.", s, a.Name),
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	return d, diags
}

// intValue decodes a whole number in [lo, hi].
func intValue(a *hcl.Attribute, lo, hi int) (int, hcl.Diagnostics) {
	v, diags := value(a, cty.Number)
	if diags.HasErrors() {
		return 0, diags
	}
	f := v.AsBigFloat()
	if !f.IsInt() || f.Cmp(big.NewFloat(float64(lo))) < 0 || f.Cmp(big.NewFloat(float64(hi))) > 0 {
		return 0, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid number",
			Detail:   fmt.Sprintf("The value %s of %q must be a whole number from %d to %d.", f.Text('g', 10), a.Name, lo, hi),
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	n, _ := f.Int64()
	return int(n), diags
}

// finite reports whether the known, non-null number v is within the range of
// a float64 (or is zero): what a plugin can unmarshal, and what can be turned
// into a string quickly.
func finite(v cty.Value) bool {
	f := v.AsBigFloat()
	if f.IsInf() {
		return false
	}
	if f.Sign() == 0 {
		return true
	}
	exp := f.MantExp(nil)
	return exp <= 1024 && exp >= -1073
}

// checkNumbers rejects number literals that are infinite or beyond the float64
// range before anything is evaluated: HCL formats a number interpolated into a
// string digit by digit, which takes seconds for "${1e9999999}".
func checkNumbers(body *hclsyntax.Body) hcl.Diagnostics {
	return hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		lit, ok := n.(*hclsyntax.LiteralValueExpr)
		if !ok || lit.Val.IsNull() || !lit.Val.IsKnown() || lit.Val.Type() != cty.Number || finite(lit.Val) {
			return nil
		}
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Number out of range",
			Detail:   "This number is beyond the range of a 64-bit float (about ±1.8e308, or smaller than 4.9e-324).",
			Subject:  lit.SrcRange.Ptr(),
		}}
	})
}

// checkJobName says why name cannot be a job name, or returns "". Job names
// appear in Redis keys and in occurrence ids ("NAME@time"), so they are
// restricted to ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$.
func checkJobName(name string) string {
	if name != "" && len(name) <= 128 && !alnum(name[0]) {
		return "it must start with a letter or digit"
	}
	return checkToken(name, "_.-", "'_', '.' and '-'")
}

// checkToken says why s is not a name of up to 128 ASCII letters, digits and the characters
// of punct (which listed names for the message), or returns "".
func checkToken(s, punct, listed string) string {
	switch {
	case s == "":
		return "it is empty"
	case len(s) > 128:
		return "it is longer than 128 characters"
	}
	for _, r := range s {
		if r >= 0x80 || !alnum(byte(r)) && !strings.ContainsRune(punct, r) {
			return fmt.Sprintf("it contains %q; use only letters, digits, %s", r, listed)
		}
	}
	return ""
}

// nameDiags reports, at the label, a block label that check refuses; kind is what the
// label names ("job", "plugin").
func nameDiags(kind, name string, check func(string) string, label hcl.Range) hcl.Diagnostics {
	problem := check(name)
	if problem == "" {
		return nil
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Invalid " + kind + " name",
		Detail:   fmt.Sprintf("The %s name %q is not valid: %s.", kind, name, problem),
		Subject:  label.Ptr(),
	}}
}

// checkNamespace says why ns cannot be a namespace, or returns "". A namespace
// prefixes every Redis key of a fleet: ^[a-z0-9][a-z0-9_-]{0,63}$.
func checkNamespace(ns string) string { return checkLowerName(ns) }

// checkPluginName says why name cannot be a plugin name, or returns "". Plugin
// names may become file names of plugin binaries, so they follow the namespace rule.
func checkPluginName(name string) string { return checkLowerName(name) }

func checkLowerName(s string) string {
	switch {
	case s == "":
		return "it is empty"
	case len(s) > 64:
		return "it is longer than 64 characters"
	case !lowerAlnum(s[0]):
		return "it must start with a lowercase letter or digit"
	}
	for _, r := range s {
		if r >= 0x80 || !lowerAlnum(byte(r)) && r != '_' && r != '-' {
			return fmt.Sprintf("it contains %q; use only lowercase letters, digits, '_' and '-'", r)
		}
	}
	return ""
}

func lowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func alnum(c byte) bool { return lowerAlnum(c) || 'A' <= c && c <= 'Z' }

// policyValue decodes a string that parse turns into a policy; parse's errors name the
// value and the allowed ones.
func policyValue[P any](a *hcl.Attribute, parse func(string) (P, error)) (P, hcl.Diagnostics) {
	var zero P
	s, diags := stringValue(a)
	if diags.HasErrors() {
		return zero, diags
	}
	p, err := parse(s)
	if err != nil {
		return zero, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid " + strings.ReplaceAll(a.Name, "_", " ") + " policy",
			Detail:   fmt.Sprintf("%v.", err),
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	return p, diags
}

// instantValue decodes an RFC 3339 time such as "2027-01-01T00:00:00Z" or
// "2027-01-01T02:00:00+01:00".
func instantValue(a *hcl.Attribute) (time.Time, hcl.Diagnostics) {
	s, diags := stringValue(a)
	if diags.HasErrors() {
		return time.Time{}, diags
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid time",
			Detail:   fmt.Sprintf("The value %q of %q is not an RFC 3339 time; write it as \"2027-01-01T00:00:00Z\" or with an offset, \"2027-01-01T02:00:00+01:00\".", s, a.Name),
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	return t.UTC(), diags
}
