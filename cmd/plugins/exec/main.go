// Command exec is the built-in exec handler as a standalone plugin binary;
// see package plugin/handlers/exec.
package main

import (
	"github.com/cronfleet/cronfleet/internal/gctune"
	"github.com/cronfleet/cronfleet/plugin/handlers/exec"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

func main() {
	gctune.Apply()
	sdk.Serve(exec.New())
}
