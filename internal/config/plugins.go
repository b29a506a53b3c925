package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// CheckPlugins reports an "Unknown plugin" error, at the plugin name, for every
// job whose handler plugin is not known to the runner. It is separate from Load
// because only the runner knows its plugins, and a config can be validated
// without them.
func (c *Config) CheckPlugins(known func(name string) bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, j := range c.Jobs {
		if known(j.Handler.Plugin) {
			continue
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unknown plugin",
			Detail:   fmt.Sprintf("Job %q uses the plugin %q, which this runner does not have.", j.Name, j.Handler.Plugin),
			Subject:  j.Handler.LabelRange.Ptr(),
		})
	}
	return diags
}
