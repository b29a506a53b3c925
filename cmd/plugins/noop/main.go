// Command noop is the built-in noop handler as a standalone plugin binary;
// see package plugin/handlers/noop.
package main

import (
	"github.com/cronfleet/cronfleet/internal/gctune"
	"github.com/cronfleet/cronfleet/plugin/handlers/noop"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

func main() {
	gctune.Apply()
	sdk.Serve(noop.New())
}
