package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cronfleet/cronfleet/internal/cron"
)

// A calendar block names days on which the jobs that exclude it do not run:
//
//	calendar "holidays" {
//	  dates    = ["2026-12-25", "2027-01-01"]
//	  ranges   = [{ from = "2026-12-24", to = "2026-12-26" }]
//	  timezone = "Europe/Berlin" # optional: by default each job's own zone
//	}
//
// A range is an object with from and to, both included: an object says which end is which
// without a separator to remember, and each end is reported at its own place. Calendars are
// top-level blocks like jobs, defined once across all files, so that one calendar serves
// many jobs; a job names them in its exclude list, and those names are resolved once every
// block is decoded (merge), since a calendar may come later or in another file.

func calendarSchema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "dates"},
			{Name: "ranges"},
			{Name: "timezone"},
		},
	}
}

// calendarRef is one name of a job's exclude list, where it was written.
type calendarRef struct {
	name string
	rng  hcl.Range
}

// calendar decodes a calendar block. It returns nil when the block has errors.
func (dec *decoder) calendar(b *hcl.Block) (*cron.Calendar, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	name := ""
	if len(b.Labels) > 0 { // HCL drops calendar blocks without a label
		name = b.Labels[0]
		diags = append(diags, nameDiags("calendar", name, checkJobName, b.LabelRanges[0])...)
	}
	content, d := b.Body.Content(calendarSchema())
	diags = append(diags, d...)
	if content == nil {
		return nil, diags
	}
	var loc *time.Location
	if a := content.Attributes["timezone"]; a != nil {
		l, _, d := dec.zone(a)
		diags = append(diags, d...)
		loc = l
	}
	var ranges []cron.DateRange
	if a := content.Attributes["dates"]; a != nil {
		exprs, d := listExprs(a, `["2026-12-25", "2027-01-01"]`)
		diags = append(diags, d...)
		for _, e := range exprs {
			date, d := dateValue(&hcl.Attribute{Name: "dates", Expr: e, Range: e.Range()})
			diags = append(diags, d...)
			ranges = append(ranges, cron.DateRange{From: date, To: date})
		}
	}
	if a := content.Attributes["ranges"]; a != nil {
		exprs, d := listExprs(a, `[{ from = "2026-12-24", to = "2026-12-26" }]`)
		diags = append(diags, d...)
		for _, e := range exprs {
			r, d := dateRange(e)
			diags = append(diags, d...)
			ranges = append(ranges, r)
		}
	}
	if len(ranges) == 0 && !diags.HasErrors() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Empty calendar",
			Detail:   fmt.Sprintf("Calendar %q names no day; give dates = [\"2026-12-25\"] or ranges = [{ from = \"2026-12-24\", to = \"2026-12-26\" }], or remove it.", name),
			Subject:  b.DefRange.Ptr(),
		})
	}
	if diags.HasErrors() {
		return nil, diags
	}
	c, err := cron.NewCalendar(name, loc, ranges)
	if err != nil {
		// dateRange refuses ranges that end before they start; a safety net.
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid calendar", Detail: err.Error() + ".", Subject: b.DefRange.Ptr()})
	}
	return c, diags
}

// dateValue decodes a calendar date, "YYYY-MM-DD".
func dateValue(a *hcl.Attribute) (cron.Date, hcl.Diagnostics) {
	s, diags := stringValue(a)
	if diags.HasErrors() {
		return cron.Date{}, diags
	}
	d, err := cron.ParseDate(s)
	if err != nil {
		return cron.Date{}, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid date",
			Detail:   fmt.Sprintf("The value %q in %q is not a calendar date; write it as \"2026-12-25\" (YYYY-MM-DD).", s, a.Name),
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	return d, diags
}

// dateRange decodes one element of a ranges list: { from = "YYYY-MM-DD", to = "YYYY-MM-DD" }.
func dateRange(e hcl.Expression) (cron.DateRange, hcl.Diagnostics) {
	var r cron.DateRange
	pairs, diags := hcl.ExprMap(e)
	if diags.HasErrors() {
		return r, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid range",
			Detail:   "A range is an object with its first and last day, both included: { from = \"2026-12-24\", to = \"2026-12-26\" }.",
			Subject:  e.Range().Ptr(),
		}}
	}
	ends := map[string]*hcl.Attribute{}
	for _, p := range pairs {
		key := keyName(p.Key)
		switch {
		case key != "from" && key != "to":
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unsupported argument",
				Detail:   fmt.Sprintf("An argument named %q is not expected in a range; a range has from and to.", key),
				Subject:  p.Key.Range().Ptr(),
			})
		case ends[key] != nil:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate argument",
				Detail:   fmt.Sprintf("The range gives %q twice.", key),
				Subject:  p.Key.Range().Ptr(),
			})
		default:
			ends[key] = &hcl.Attribute{Name: key, Expr: p.Value, Range: hcl.RangeBetween(p.Key.Range(), p.Value.Range())}
		}
	}
	for _, key := range []string{"from", "to"} {
		if ends[key] == nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Incomplete range",
				Detail:   fmt.Sprintf("The range has no %q; a range is { from = \"2026-12-24\", to = \"2026-12-26\" }, both days included.", key),
				Subject:  e.Range().Ptr(),
			})
		}
	}
	if diags.HasErrors() {
		return r, diags
	}
	from, d := dateValue(ends["from"])
	diags = append(diags, d...)
	to, d := dateValue(ends["to"])
	diags = append(diags, d...)
	if !diags.HasErrors() && to.Before(from) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Range ends before it starts",
			Detail:   fmt.Sprintf("The range from %s to %s ends before it starts; from is the first day and to the last, both included.", from, to),
			Subject:  ends["to"].Expr.Range().Ptr(),
		})
	}
	return cron.DateRange{From: from, To: to}, diags
}

// listExprs returns the elements of a's list, written as a list: an element is reported at
// its own place. Anything else is reported with an example of the list expected.
func listExprs(a *hcl.Attribute, example string) ([]hcl.Expression, hcl.Diagnostics) {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid " + a.Name,
			Detail:   fmt.Sprintf("The value of %q must be written as a list, such as %s.", a.Name, example),
			Subject:  a.Expr.Range().Ptr(),
		}}
	}
	return exprs, nil
}

// keyName is the name of an object key written as a bare word or as a quoted string.
func keyName(e hcl.Expression) string {
	if kw := hcl.ExprAsKeyword(e); kw != "" {
		return kw
	}
	if v, d := e.Value(nil); !d.HasErrors() && v.IsKnown() && !v.IsNull() && v.Type() == cty.String {
		return v.AsString()
	}
	return ""
}

// decodeExclude decodes the exclude attribute of a job block, if it has one: a list of
// calendar names, each once. The job's own decode has reported the rest of the block.
func decodeExclude(b *hcl.Block) ([]calendarRef, hcl.Diagnostics) {
	content, _, _ := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "exclude"}}})
	a := content.Attributes["exclude"]
	if a == nil {
		return nil, nil
	}
	exprs, diags := listExprs(a, `["holidays"]`)
	var refs []calendarRef
	for _, e := range exprs {
		name, d := stringValue(&hcl.Attribute{Name: a.Name, Expr: e, Range: e.Range()})
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		if slices.ContainsFunc(refs, func(r calendarRef) bool { return r.name == name }) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate calendar",
				Detail:   fmt.Sprintf("The calendar %q is in the exclude list twice.", name),
				Subject:  e.Range().Ptr(),
			})
			continue
		}
		refs = append(refs, calendarRef{name, e.Range()})
	}
	return refs, diags
}

// exclusions resolves the exclude lists of jobs against the calendars (nil for one defined
// with errors, which are reported already), reports the names no calendar block has, and
// sets each job's Exclude. Jobs that exclude the same calendars share
// one slice, so a large job set keeps a pointer per job, not a list.
func exclusions(jobs []*Job, refs map[*Job][]calendarRef, cals map[string]*cron.Calendar) hcl.Diagnostics {
	var diags hcl.Diagnostics
	shared := map[string][]*cron.Calendar{}
	for _, j := range jobs {
		rs := refs[j]
		if len(rs) == 0 {
			continue
		}
		names := make([]string, len(rs))
		ok := true
		for i, r := range rs {
			names[i] = r.name
			c, defined := cals[r.name]
			ok = ok && c != nil
			if !defined {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Unknown calendar",
					Detail:   fmt.Sprintf("Job %q excludes the calendar %q, which no job file defines; %s.", j.Name, r.name, known(cals)),
					Subject:  r.rng.Ptr(),
				})
			}
		}
		if !ok {
			continue
		}
		key := strings.Join(names, "\x00")
		list, seen := shared[key]
		if !seen {
			list = make([]*cron.Calendar, len(names))
			for i, n := range names {
				list[i] = cals[n]
			}
			shared[key] = list
		}
		j.Exclude = list
		if j.Hash != "" { // the job has no error of its own: its hash counts the calendars
			j.Hash = hashJob(j)
		}
	}
	return diags
}

// known lists the calendars defined, for a diagnostic about one that is not.
func known(cals map[string]*cron.Calendar) string {
	if len(cals) == 0 {
		return "no calendar is defined: add a calendar block, such as calendar \"holidays\" { dates = [\"2026-12-25\"] }"
	}
	names := make([]string, 0, len(cals))
	for n := range cals {
		names = append(names, fmt.Sprintf("%q", n))
	}
	slices.Sort(names)
	if len(names) == 1 {
		return "the calendar defined is " + names[0]
	}
	return "the calendars defined are " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
