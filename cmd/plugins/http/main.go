// Command http is the built-in http handler as a standalone plugin binary;
// see package plugin/handlers/http.
package main

import (
	"github.com/cronfleet/cronfleet/internal/gctune"
	httphandler "github.com/cronfleet/cronfleet/plugin/handlers/http"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

func main() {
	gctune.Apply()
	sdk.Serve(httphandler.New())
}
