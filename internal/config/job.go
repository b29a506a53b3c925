package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// job decodes a job block. It always returns a Job with at least Name and DeclRange set, so
// that duplicates of an invalid job are still reported.
func (dec *decoder) job(b *hcl.Block) (*Job, hcl.Diagnostics) {
	j := &Job{
		DeclRange: b.DefRange,
		Timezone:  "UTC",
		Location:  time.UTC,
		Retry:     Retry{Attempts: DefaultAttempts, Backoff: DefaultBackoff, MaxBackoff: DefaultMaxBackoff},
		Policy:    queue.DefaultPolicy(),
		Priority:  queue.DefaultPriority,
	}
	var diags hcl.Diagnostics
	if len(b.Labels) > 0 { // HCL drops job blocks without a label, so this always holds
		j.Name = b.Labels[0]
		diags = append(diags, nameDiags("job", j.Name, checkJobName, b.LabelRanges[0])...)
	}
	content, d := b.Body.Content(jobSchema())
	diags = append(diags, d...)
	if content == nil {
		return j, diags
	}

	zoneOK := true
	if a := content.Attributes["timezone"]; a != nil {
		loc, name, d := dec.zone(a)
		diags = append(diags, d...)
		zoneOK = !d.HasErrors()
		if zoneOK {
			j.Timezone, j.Location = name, loc
		}
	}

	if a := content.Attributes["dst_gap"]; a != nil {
		p, d := policyValue(a, cron.ParseGapPolicy)
		diags = append(diags, d...)
		j.DSTGap = p
	}
	if a := content.Attributes["dst_repeat"]; a != nil {
		p, d := policyValue(a, cron.ParseRepeatPolicy)
		diags = append(diags, d...)
		j.DSTRepeat = p
	}
	for _, bound := range []struct {
		name string
		to   *time.Time
	}{{"start_at", &j.StartAt}, {"end_at", &j.EndAt}} {
		if a := content.Attributes[bound.name]; a != nil {
			t, d := instantValue(a)
			diags = append(diags, d...)
			*bound.to = t
			if bound.name == "end_at" && !d.HasErrors() && !j.StartAt.IsZero() && t.Before(j.StartAt) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "End before start",
					Detail:   fmt.Sprintf("The job's end_at %s is before its start_at %s: it would never run.", t.Format(time.RFC3339), j.StartAt.Format(time.RFC3339)),
					Subject:  a.Expr.Range().Ptr(),
				})
			}
		}
	}
	if a := content.Attributes["max_runs"]; a != nil {
		n, d := intValue(a, 1, math.MaxInt32)
		diags = append(diags, d...)
		j.MaxRuns = n
	}
	if a := content.Attributes["jitter"]; a != nil {
		jitter, d := durationValue(a)
		diags = append(diags, d...)
		j.Jitter = jitter
	}
	if a := content.Attributes["overlap"]; a != nil {
		p, d := policyValue(a, queue.ParseOverlap)
		diags = append(diags, d...)
		j.Policy.Overlap = p
	}
	if a := content.Attributes["catchup"]; a != nil {
		p, d := policyValue(a, queue.ParseCatchup)
		diags = append(diags, d...)
		j.Policy.Catchup = p
	}
	if a := content.Attributes["catchup_window"]; a != nil {
		w, d := durationValue(a)
		diags = append(diags, d...)
		if !d.HasErrors() && w < time.Second {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Catch-up window too short",
				Detail:   fmt.Sprintf("The catchup_window %s is shorter than a second; to run nothing that was missed, set catchup = \"none\".", w),
				Subject:  a.Expr.Range().Ptr(),
			})
		}
		j.Policy.CatchupWindow = w
	}

	if a := content.Attributes["schedule"]; a != nil {
		// With a bad zone, the schedule is still parsed (in UTC) to report its own errors.
		specs, sched, d := dec.schedules(a, cron.Options{Location: j.Location, Gap: j.DSTGap, Repeat: j.DSTRepeat, Seed: j.Name})
		diags = append(diags, d...)
		j.Schedules, j.Schedule = specs, strings.Join(specs, " | ")
		if sched != nil {
			j.Sched = cron.Bounded(sched, j.StartAt, j.EndAt)
		}
	} else {
		// A job that runs after others needs no schedule: decided once its blocks are read.
		j.Sched = never{}
	}

	if a := content.Attributes["timeout"]; a != nil {
		timeout, d := durationValue(a)
		diags = append(diags, d...)
		j.Timeout = timeout
	}
	if a := content.Attributes["max_concurrent"]; a != nil {
		n, d := intValue(a, 1, MaxConcurrency)
		diags = append(diags, d...)
		j.MaxConcurrent = n
		// Any other overlap policy already runs the job one occurrence at a time: a cap
		// above one would promise what the slot forbids, a cap of one would say nothing.
		if !d.HasErrors() && j.Policy.Overlap != queue.OverlapAllow {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "max_concurrent needs overlap = \"allow\"",
				Detail:   fmt.Sprintf("Job %q caps its runs at once with max_concurrent, but its overlap policy %q already runs one at a time; set overlap = \"allow\" to run up to %d at once.", j.Name, j.Policy.Overlap, n),
				Subject:  a.Expr.Range().Ptr(),
			})
		}
	}

	if a := content.Attributes["priority"]; a != nil {
		n, d := intValue(a, queue.MinPriority, queue.MaxPriority)
		diags = append(diags, d...)
		if !d.HasErrors() {
			j.Priority = n
		}
	}

	diags = append(diags, decodeFanOut(j, content.Attributes)...)

	var retryDecl, handlerDecl, alertDecl *hcl.Range
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "retry":
			if retryDecl != nil {
				diags = append(diags, duplicate("Duplicate retry block",
					fmt.Sprintf("Job %q has more than one retry block", j.Name), blk.DefRange, *retryDecl))
				continue
			}
			retryDecl = blk.DefRange.Ptr()
			r, d := decodeRetry(blk)
			diags = append(diags, d...)
			j.Retry = r
		case "handler":
			if handlerDecl != nil {
				diags = append(diags, duplicate("Duplicate handler block",
					fmt.Sprintf("Job %q has more than one handler block; a job has exactly one", j.Name), blk.DefRange, *handlerDecl))
				continue
			}
			handlerDecl = blk.DefRange.Ptr()
			h, d := decodeHandler(blk, dec.eval)
			diags = append(diags, d...)
			j.Handler = h
		case "constraint":
			c, d := decodeConstraint(blk)
			diags = append(diags, d...)
			j.Constraints = append(j.Constraints, c)
		case "after":
			a, d := decodeAfter(blk, j.Name)
			diags = append(diags, d...)
			if i := slices.IndexFunc(j.After, func(p After) bool { return p.Job == a.Job }); i >= 0 {
				diags = append(diags, duplicate("Duplicate after block",
					fmt.Sprintf("Job %q runs after %q more than once; one after block per upstream job", j.Name, a.Job), blk.DefRange, j.After[i].DeclRange))
				continue
			}
			j.After = append(j.After, a)
		case "alert":
			if alertDecl != nil {
				diags = append(diags, duplicate("Duplicate alert block",
					fmt.Sprintf("Job %q has more than one alert block; list every event in one", j.Name), blk.DefRange, *alertDecl))
				continue
			}
			alertDecl = blk.DefRange.Ptr()
			a, d := decodeAlert(blk, j.Name, dec.eval)
			diags = append(diags, d...)
			j.Alert = a
		}
	}
	if content.Attributes["schedule"] == nil && len(j.After) == 0 {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing schedule",
			Detail:   fmt.Sprintf("Job %q has no schedule; add one such as schedule = \"@daily\" or schedule = \"0 30 2 * * *\", or an after block.", j.Name),
			Subject:  b.DefRange.Ptr(),
		})
	}
	if handlerDecl == nil {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing handler block",
			Detail:   fmt.Sprintf("Job %q has no handler block; add one such as handler \"exec\" { command = [\"true\"] }.", j.Name),
			Subject:  b.DefRange.Ptr(),
		})
	}

	if !diags.HasErrors() {
		j.Hash = hashJob(j)
	}
	return j, diags
}

// zone decodes a timezone attribute.
func (dec *decoder) zone(a *hcl.Attribute) (*time.Location, string, hcl.Diagnostics) {
	name, diags := stringValue(a)
	if diags.HasErrors() {
		return nil, "", diags
	}
	loc, err := dec.location(name)
	if err != nil {
		return nil, "", append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unknown time zone",
			Detail:   fmt.Sprintf("%v.", err), // cron's errors name the zone
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	if name == "" {
		name = "UTC"
	}
	return loc, name, diags
}

// schedules decodes a schedule attribute: one expression, or a list of them whose union
// the job runs on. Each is parsed with o, and each error points at its expression.
func (dec *decoder) schedules(a *hcl.Attribute, o cron.Options) ([]string, cron.Schedule, hcl.Diagnostics) {
	exprs, listDiags := hcl.ExprList(a.Expr)
	if listDiags.HasErrors() {
		spec, sched, diags := dec.schedule(a.Name, a.Expr, o)
		return []string{spec}, sched, diags
	}
	if len(exprs) == 0 {
		return nil, nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Empty schedule list",
			Detail:   "The schedule list has no expression; give at least one, such as [\"@daily\"].",
			Subject:  a.Expr.Range().Ptr(),
		}}
	}
	var (
		specs []string
		all   []cron.Schedule
		diags hcl.Diagnostics
	)
	seen := map[string]bool{}
	for _, e := range exprs {
		spec, sched, d := dec.schedule(a.Name, e, o)
		diags = append(diags, d...)
		if !d.HasErrors() && seen[spec] {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate schedule",
				Detail:   fmt.Sprintf("The schedule %q is in the list twice.", spec),
				Subject:  e.Range().Ptr(),
			})
		}
		seen[spec] = true
		specs = append(specs, spec)
		all = append(all, sched)
	}
	if diags.HasErrors() {
		return specs, nil, diags
	}
	if len(all) == 1 {
		return specs, all[0], diags
	}
	return specs, cron.Union(all...), diags
}

// schedule decodes one schedule expression, the attribute name's or an element of its list.
func (dec *decoder) schedule(name string, expr hcl.Expression, o cron.Options) (string, cron.Schedule, hcl.Diagnostics) {
	spec, diags := stringValue(&hcl.Attribute{Name: name, Expr: expr})
	if diags.HasErrors() {
		return "", nil, diags
	}
	bad := func(summary, detail string) (string, cron.Schedule, hcl.Diagnostics) {
		return spec, nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  summary,
			Detail:   detail,
			Subject:  expr.Range().Ptr(),
		})
	}
	p := dec.parse(spec, o)
	if p.err != nil {
		// cron's errors name the spec, and say why it was rejected.
		return bad("Invalid schedule", fmt.Sprintf("%v. A schedule is five cron fields (minute hour day-of-month month day-of-week), optionally preceded by seconds, or a descriptor such as \"@daily\" or \"@every 90s\".", p.err))
	}
	if p.never {
		return bad("Schedule never fires", fmt.Sprintf("The schedule %q matches no time at all, for example a day that does not exist in its month.", spec))
	}
	return spec, p.sched, diags
}

func decodeRetry(b *hcl.Block) (Retry, hcl.Diagnostics) {
	r := Retry{Attempts: DefaultAttempts, Backoff: DefaultBackoff, MaxBackoff: DefaultMaxBackoff}
	content, diags := b.Body.Content(retrySchema())
	if content == nil {
		return r, diags
	}
	if a := content.Attributes["attempts"]; a != nil {
		n, d := intValue(a, 1, MaxAttempts)
		diags = append(diags, d...)
		r.Attempts = n
	}
	backoff, maxBackoff := content.Attributes["backoff"], content.Attributes["max_backoff"]
	ok := true
	if backoff != nil {
		v, d := durationValue(backoff)
		diags, ok = append(diags, d...), !d.HasErrors()
		r.Backoff = v
	}
	if maxBackoff != nil {
		v, d := durationValue(maxBackoff)
		diags, ok = append(diags, d...), ok && !d.HasErrors()
		r.MaxBackoff = v
	}
	if ok && r.MaxBackoff < r.Backoff {
		subject, detail := maxBackoff, fmt.Sprintf("The max_backoff %s is less than the backoff %s it caps.", r.MaxBackoff, r.Backoff)
		if subject == nil {
			subject, detail = backoff, fmt.Sprintf("The backoff %s exceeds the default max_backoff of %s; set max_backoff too.", r.Backoff, r.MaxBackoff)
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid retry backoff",
			Detail:   detail,
			Subject:  subject.Expr.Range().Ptr(),
		})
	}
	return r, diags
}
