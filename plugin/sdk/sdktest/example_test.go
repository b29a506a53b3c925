package sdktest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cronfleet/cronfleet/plugin/sdk"
	"github.com/cronfleet/cronfleet/plugin/sdk/sdktest"
)

// greeter is the handler under test: what a plugin's main would Serve.
var greeter = sdk.Func(sdk.Schema{Attributes: []sdk.Attribute{
	{Name: "name", Type: sdk.TypeString, Required: true, Description: "Whom to greet."},
	{Name: "greeting", Type: sdk.TypeString, Default: "hello", Description: "How."},
}}, func(ctx context.Context, run *sdk.Run) (*sdk.Result, error) {
	var s struct {
		Name     string `json:"name"`
		Greeting string `json:"greeting"`
	}
	if err := run.Decode(&s); err != nil {
		return nil, err
	}
	fmt.Fprintf(run.Output(), "%s, %s\n", s.Greeting, s.Name)
	return &sdk.Result{Message: "greeted " + s.Name}, nil
})

// TestGreeter is how a plugin author tests a handler: no runner, no Redis.
func TestGreeter(t *testing.T) {
	res, lines, err := sdktest.Run(t, greeter, sdktest.Occurrence{Job: "greet"}, map[string]any{"name": "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Message != "greeted fleet" || len(lines) != 1 || lines[0] != "hello, fleet" {
		t.Errorf("got %+v, %q", res, lines)
	}
}

// CheckSettings finds what "runner validate" would report in a job file.
func Example_checkSettings() {
	fmt.Println(sdktest.CheckSettings(greeter, `{"name": "fleet"}`))
	fmt.Println(sdktest.CheckSettings(greeter, `{"nam": "fleet"}`))
	// Output:
	// <nil>
	// sdk: settings: missing required attribute "name" (string)
	// unknown attribute "nam"
}
