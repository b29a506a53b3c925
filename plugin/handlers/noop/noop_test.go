package noop_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/plugin/handlers/noop"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

func TestStartedAt(t *testing.T) {
	before := time.Now()
	res, err := noop.New().Run(t.Context(), &sdk.Run{})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := strconv.ParseInt(res.Metadata[noop.StartedAtKey], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if at := time.Unix(0, ns); at.Before(before) || at.After(time.Now()) {
		t.Errorf("started_at %v outside the call", at)
	}
	if _, err := noop.New().Run(t.Context(), &sdk.Run{Settings: []byte(`{"x":1}`)}); err == nil {
		t.Error("noop accepted settings")
	}
}
