package pythonplugin_test

import (
	"testing"

	"github.com/cronfleet/cronfleet/internal/fleettest"
)

// TestPluginCheck runs the conformance check, "runner plugin check", on
// echo-python: handshake, schema, a run, its start, cancellation and timeout (with a
// run that would sleep a minute, so both are tested for real).
func TestPluginCheck(t *testing.T) {
	requirePython(t)
	fleettest.CheckPlugin(t, "-settings", `{"message":"hi"}`, "-long-settings", `{"sleep":60}`, "./echo-python")
}
