package config

import (
	"encoding/hex"
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// Plugin is a plugin block: a third-party plugin binary declared, and optionally pinned,
// in the job files rather than found in the plugin directory; or, without a path,
// settings for a plugin the runner already has (a built-in or one in the plugin
// directory), such as a cap on its concurrent runs.
//
//	plugin "webhook" {
//	  path           = "/opt/cronfleet/plugins/webhook"
//	  sha256         = "5f1c…"  # the binary is refused if its checksum differs
//	  max_concurrent = 4        # runs of this plugin at once on a node
//	}
//
//	plugin "exec" {
//	  max_concurrent = 8
//	}
type Plugin struct {
	// Name is the label: the name handler blocks use.
	Name string
	// Path is the plugin binary; empty for a plugin the runner already has.
	Path string
	// SHA256 is the expected hex checksum of the binary; empty means not pinned.
	SHA256 string
	// MaxConcurrent caps this plugin's runs at once on one node; 0 means no cap.
	MaxConcurrent int
	// DeclRange is the range of the block header.
	DeclRange hcl.Range
	// LabelRange is the range of the name label.
	LabelRange hcl.Range
}

func decodePlugin(b *hcl.Block) (*Plugin, hcl.Diagnostics) {
	p := &Plugin{Name: b.Labels[0], DeclRange: b.DefRange, LabelRange: b.LabelRanges[0]}
	diags := nameDiags("plugin", p.Name, checkPluginName, p.LabelRange)
	content, d := b.Body.Content(pluginSchema())
	diags = append(diags, d...)
	if content == nil {
		return p, diags
	}
	if a, ok := content.Attributes["path"]; ok {
		p.Path, d = stringValue(a)
		diags = append(diags, d...)
		if !d.HasErrors() && p.Path == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid plugin path",
				Detail:   "The path of a plugin binary must not be empty.",
				Subject:  a.Expr.Range().Ptr(),
			})
		}
	}
	if a, ok := content.Attributes["sha256"]; ok {
		p.SHA256, d = stringValue(a)
		diags = append(diags, d...)
		if b, err := hex.DecodeString(p.SHA256); !d.HasErrors() && (err != nil || len(b) != 32) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid checksum",
				Detail:   fmt.Sprintf("The sha256 %q is not 64 hexadecimal digits (as sha256sum prints them).", p.SHA256),
				Subject:  a.Expr.Range().Ptr(),
			})
		}
	}
	if a, ok := content.Attributes["max_concurrent"]; ok {
		p.MaxConcurrent, d = intValue(a, 1, 1<<20)
		diags = append(diags, d...)
	}
	if a, ok := content.Attributes["sha256"]; ok && content.Attributes["path"] == nil {
		// A checksum pins a binary; without a path there is no binary the operator chose,
		// and silently ignoring the pin would be worse than refusing it.
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Checksum without a path",
			Detail:   fmt.Sprintf("Plugin %q has a sha256 but no path: a checksum pins the binary given by path.", p.Name),
			Subject:  a.NameRange.Ptr(),
		})
	}
	return p, diags
}

// CheckPlugins reports an "Unknown plugin" error, at the plugin name, for every
// job whose handler plugin is neither known to the runner nor declared by a plugin
// block with a path, and for every plugin block without a path that names a plugin
// the runner does not have. It is separate from Load because only the runner knows
// its plugins, and a config can be validated without them.
func (c *Config) CheckPlugins(known func(name string) bool) hcl.Diagnostics {
	declared := map[string]bool{}
	var diags hcl.Diagnostics
	for _, p := range c.Plugins {
		if p.Path != "" {
			declared[p.Name] = true
			continue
		}
		if !known(p.Name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown plugin",
				Detail:   fmt.Sprintf("The plugin block %q has no path, and this runner has no plugin of that name.", p.Name),
				Subject:  p.LabelRange.Ptr(),
			})
		}
	}
	for _, s := range c.handlers() {
		if known(s.h.Plugin) || declared[s.h.Plugin] {
			continue
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unknown plugin",
			Detail:   fmt.Sprintf("Job %q uses the plugin %q, which this runner does not have.", s.job.Name, s.h.Plugin),
			Subject:  s.h.LabelRange.Ptr(),
		})
	}
	return diags
}
