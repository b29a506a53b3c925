package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/cronfleet/cronfleet/internal/cron"
)

func alertSchema() *hcl.BodySchema {
	return &hcl.BodySchema{
		// on is required, but checked by decodeAlert, to name the job.
		Attributes: []hcl.AttributeSchema{
			{Name: "on"},
			{Name: "late_after"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "handler", LabelNames: []string{"plugin"}},
		},
	}
}

// decodeAlert decodes the alert block of the job named job.
func decodeAlert(b *hcl.Block, job string, ev *hcl.EvalContext) (*Alert, hcl.Diagnostics) {
	a := &Alert{DeclRange: b.DefRange, Retry: AlertRetry(), Timeout: AlertTimeout}
	content, diags := b.Body.Content(alertSchema())
	if content == nil {
		return a, diags
	}
	on := content.Attributes["on"]
	if on == nil {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing alert events",
			Detail:   fmt.Sprintf("The alert of job %q has no events; add on = [\"failure\"], with any of %s.", job, kindList()),
			Subject:  b.DefRange.Ptr(),
		})
	} else {
		kinds, d := alertKinds(on)
		diags = append(diags, d...)
		a.On = kinds
	}
	late := a.Has(cron.AlertLate)
	if attr := content.Attributes["late_after"]; attr != nil {
		d, dd := durationValue(attr)
		diags = append(diags, dd...)
		switch {
		case dd.HasErrors():
		case !late && on != nil:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unused late_after",
				Detail:   "late_after says when an occurrence is late, but the alert is not on \"late\"; add \"late\" to on, or leave late_after out.",
				Subject:  attr.Expr.Range().Ptr(),
			})
		case d <= 0:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid late_after",
				Detail:   "late_after must be longer than zero: an occurrence cannot have started at the instant it is due.",
				Subject:  attr.Expr.Range().Ptr(),
			})
		}
		a.LateAfter = d
	} else if late {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing late_after",
			Detail:   fmt.Sprintf("The alert of job %q is on \"late\" but does not say when an occurrence is late; add late_after = \"2m\", say.", job),
			Subject:  on.Expr.Range().Ptr(),
		})
	}
	var handlerDecl *hcl.Range
	for _, blk := range content.Blocks {
		if handlerDecl != nil {
			diags = append(diags, duplicate("Duplicate handler block",
				fmt.Sprintf("The alert of job %q has more than one handler block; an alert has exactly one", job), blk.DefRange, *handlerDecl))
			continue
		}
		handlerDecl = blk.DefRange.Ptr()
		h, d := decodeHandler(blk, ev)
		diags = append(diags, d...)
		a.Handler = h
	}
	if handlerDecl == nil {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing handler block",
			Detail:   fmt.Sprintf("The alert of job %q has no handler block; add one such as handler \"exec\" { command = [\"notify\"] }.", job),
			Subject:  b.DefRange.Ptr(),
		})
	}
	return a, diags
}

// alertKinds decodes the on attribute: a non-empty list of event names, each once. Each
// problem points at its element.
func alertKinds(a *hcl.Attribute) ([]cron.AlertKind, hcl.Diagnostics) {
	exprs, d := hcl.ExprList(a.Expr)
	if d.HasErrors() {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Incorrect attribute value type",
			Detail:   fmt.Sprintf("Inappropriate value for attribute \"on\": a list of event names required, such as [\"failure\", \"missed\"] (any of %s).", kindList()),
			Subject:  a.Expr.Range().Ptr(),
		}}
	}
	if len(exprs) == 0 {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "No alert events",
			Detail:   fmt.Sprintf("The list of events is empty; give at least one of %s, or leave the alert block out.", kindList()),
			Subject:  a.Expr.Range().Ptr(),
		}}
	}
	var diags hcl.Diagnostics
	seen := map[cron.AlertKind]bool{}
	for _, e := range exprs {
		s, d := stringValue(&hcl.Attribute{Name: "on", Expr: e})
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		k := cron.AlertKind(s)
		switch {
		case !slices.Contains(cron.AlertKinds(), k):
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown alert event",
				Detail:   fmt.Sprintf("%q is not an event an alert can be on; use %s.", s, kindList()),
				Subject:  e.Range().Ptr(),
			})
		case seen[k]:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate alert event",
				Detail:   fmt.Sprintf("The event %q is in the list twice.", s),
				Subject:  e.Range().Ptr(),
			})
		}
		seen[k] = true
	}
	// Kept in one order, so that equal alerts hash alike however they are written.
	var kinds []cron.AlertKind
	for _, k := range cron.AlertKinds() {
		if seen[k] {
			kinds = append(kinds, k)
		}
	}
	return kinds, diags
}

// kindList names the alert events for a diagnostic: "failure", "missed" or "late".
func kindList() string {
	ks := cron.AlertKinds()
	q := make([]string, len(ks))
	for i, k := range ks {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
