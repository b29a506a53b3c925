package pythonplugin_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// TestSchema: the host reads the plugin's schema, keeping each default as the JSON the
// plugin sent.
func TestSchema(t *testing.T) {
	h := newHost(t)
	got, err := h.Schema(t.Context(), "echo-python")
	if err != nil {
		t.Fatal(err)
	}
	want := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "message", Type: sdk.TypeString, Description: "A message echoed as an output line."},
		{Name: "sleep", Type: sdk.TypeNumber, Default: json.RawMessage("0"), Description: "Seconds to wait before returning; a cancelled run returns at once."},
		{Name: "fail", Type: sdk.TypeString, Description: "When set, the run fails with this message."},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema (-want +got):\n%s", diff)
	}
}
