package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/cronfleet/cronfleet/internal/cron"
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
