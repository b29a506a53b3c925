package config

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// The schemas are built by functions rather than held in package variables, so
// nothing at package level can be mutated.

func fileSchema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "runner"},
			{Type: "job", LabelNames: []string{"name"}},
			{Type: "plugin", LabelNames: []string{"name"}},
			{Type: "calendar", LabelNames: []string{"name"}},
		},
	}
}

func pluginSchema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "path"},
			{Name: "sha256"},
			{Name: "max_concurrent"},
		},
	}
}

func runnerSchema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "namespace"},
			{Name: "lease"},
			{Name: "concurrency"},
			{Name: "redis_tls_ca"},
			{Name: "redis_tls_cert"},
			{Name: "redis_tls_key"},
		},
	}
}

func jobSchema() *hcl.BodySchema {
	return &hcl.BodySchema{
		// schedule is required unless the job has after blocks, and checked by decodeJob:
		// its diagnostic can name the job and point at its header rather than at the
		// open brace.
		Attributes: []hcl.AttributeSchema{
			{Name: "schedule"},
			{Name: "timezone"},
			{Name: "dst_gap"},
			{Name: "dst_repeat"},
			{Name: "start_at"},
			{Name: "end_at"},
			{Name: "max_runs"},
			{Name: "jitter"},
			{Name: "overlap"},
			{Name: "catchup"},
			{Name: "catchup_window"},
			{Name: "timeout"},
			{Name: "exclude"},
			{Name: "max_concurrent"},
			{Name: "priority"},
			{Name: "broadcast"},
			{Name: "shards"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "retry"},
			{Type: "handler", LabelNames: []string{"plugin"}},
			{Type: "alert"},
			{Type: "after", LabelNames: []string{"job"}},
			{Type: "constraint"},
		},
	}
}

func retrySchema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "attempts"},
			{Name: "backoff"},
			{Name: "max_backoff"},
		},
	}
}

// item is one top-level block, decoded on its own: what it contributes to the Config, and
// its diagnostics. Blocks decode independently of each other, so the blocks of a large file
// are decoded in parallel; merge then settles, in file order, what depends on the others
// (duplicates, the one runner block).
type item struct {
	typ      string    // the block type: "runner", "job", "plugin" or "calendar"
	def      hcl.Range // the block header
	runner   Runner
	job      *Job
	plugin   *Plugin
	calendar *cron.Calendar // nil if the block has errors
	label    string         // the calendar's name
	exclude  []calendarRef  // the job's exclude list, resolved by merge
	diags    hcl.Diagnostics
}

// block decodes one top-level block of the file schema.
func (dec *decoder) block(b *hcl.Block) item {
	it := item{typ: b.Type, def: b.DefRange}
	switch b.Type {
	case "runner":
		it.runner, it.diags = decodeRunner(b)
	case "job":
		it.job, it.diags = dec.job(b)
		var d hcl.Diagnostics
		it.exclude, d = decodeExclude(b)
		it.diags = append(it.diags, d...)
	case "plugin":
		it.plugin, it.diags = decodePlugin(b)
	case "calendar":
		if len(b.Labels) > 0 { // HCL drops calendar blocks without a label, so this always holds
			it.label = b.Labels[0]
		}
		it.calendar, it.diags = dec.calendar(b)
	}
	return it
}

// merge builds one Config from the decoded blocks of each file, in file order. It returns a
// nil Config if there are errors.
func merge(dec *decoder, files [][]item) (*Config, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	cfg := &Config{Runner: Runner{Namespace: DefaultNamespace, Lease: DefaultLease}, eval: dec.eval}
	var runnerDecl *hcl.Range
	var n int
	for _, items := range files {
		n += len(items)
	}
	seen := make(map[string]*Job, n)
	plugins := map[string]*Plugin{}
	cals := map[string]*cron.Calendar{}
	calDecl := map[string]hcl.Range{}
	refs := map[*Job][]calendarRef{}
	for _, items := range files {
		for _, it := range items {
			diags = append(diags, it.diags...)
			switch it.typ {
			case "runner":
				if runnerDecl != nil {
					diags = append(diags, duplicate("Duplicate runner block",
						"A fleet has at most one runner block, across all files", it.def, *runnerDecl))
					continue
				}
				runnerDecl = it.def.Ptr()
				cfg.Runner = it.runner
			case "job":
				j := it.job
				if prev, ok := seen[j.Name]; ok {
					diags = append(diags, duplicate("Duplicate job",
						fmt.Sprintf("Job %q is defined more than once; job names must be unique across all files", j.Name),
						it.def, prev.DeclRange))
					continue
				}
				seen[j.Name] = j
				cfg.Jobs = append(cfg.Jobs, j)
				if len(it.exclude) > 0 {
					refs[j] = it.exclude
				}
			case "plugin":
				p := it.plugin
				if prev, ok := plugins[p.Name]; ok {
					diags = append(diags, duplicate("Duplicate plugin",
						fmt.Sprintf("Plugin %q is declared more than once", p.Name), it.def, prev.DeclRange))
					continue
				}
				plugins[p.Name] = p
				cfg.Plugins = append(cfg.Plugins, p)
			case "calendar":
				name := it.label
				if prev, ok := calDecl[name]; ok {
					diags = append(diags, duplicate("Duplicate calendar",
						fmt.Sprintf("Calendar %q is defined more than once; calendar names must be unique across all files", name), it.def, prev))
					continue
				}
				calDecl[name] = it.def
				cals[name] = it.calendar // nil if it has errors: known, but reported already
				if it.calendar != nil {
					cfg.Calendars = append(cfg.Calendars, it.calendar)
				}
			}
		}
	}
	diags = append(diags, checkAfter(cfg.Jobs)...)
	diags = append(diags, exclusions(cfg.Jobs, refs, cals)...)
	if diags.HasErrors() {
		return nil, diags
	}
	slices.SortFunc(cfg.Jobs, func(a, b *Job) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(cfg.Plugins, func(a, b *Plugin) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(cfg.Calendars, func(a, b *cron.Calendar) int { return strings.Compare(a.Name(), b.Name()) })
	return cfg, diags
}

// duplicate reports a second definition at subject of something first defined at prev.
func duplicate(summary, detail string, subject, prev hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail: fmt.Sprintf("%s; previous definition was at %s:%d,%d.",
			detail, prev.Filename, prev.Start.Line, prev.Start.Column),
		Subject: subject.Ptr(),
	}
}

func decodeRunner(b *hcl.Block) (Runner, hcl.Diagnostics) {
	r := Runner{Namespace: DefaultNamespace, Lease: DefaultLease}
	content, diags := b.Body.Content(runnerSchema())
	if content == nil {
		return r, diags
	}
	if a := content.Attributes["namespace"]; a != nil {
		ns, d := stringValue(a)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if problem := checkNamespace(ns); problem != "" {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid namespace",
					Detail:   fmt.Sprintf("The namespace %q is not valid: %s.", ns, problem),
					Subject:  a.Expr.Range().Ptr(),
				})
			}
			r.Namespace = ns
		}
	}
	if a := content.Attributes["lease"]; a != nil {
		lease, d := durationValue(a)
		diags = append(diags, d...)
		if !d.HasErrors() && lease < MinLease {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Lease too short",
				Detail:   fmt.Sprintf("The lease %s is shorter than the minimum of %s.", lease, MinLease),
				Subject:  a.Expr.Range().Ptr(),
			})
		}
		r.Lease = lease
	}
	if a := content.Attributes["concurrency"]; a != nil {
		n, d := intValue(a, 1, MaxConcurrency)
		diags = append(diags, d...)
		r.Concurrency = n
	}
	for name, dst := range map[string]*string{"redis_tls_ca": &r.RedisTLS.CA, "redis_tls_cert": &r.RedisTLS.Cert, "redis_tls_key": &r.RedisTLS.Key} {
		a := content.Attributes[name]
		if a == nil {
			continue
		}
		p, d := stringValue(a)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		if p == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Empty path",
				Detail:   fmt.Sprintf("%s names a PEM file; leave it out rather than empty.", name),
				Subject:  a.Expr.Range().Ptr(),
			})
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(a.Range.Filename), p)
		}
		*dst = p
	}
	return r, diags
}

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
