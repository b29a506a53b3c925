package noop

import (
	"context"
	"strconv"
	"time"

	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// StartedAtKey is the metadata key holding the handler's start time, in
// Unix nanoseconds.
const StartedAtKey = "started_at_unix_nano"

// New returns the noop handler. It accepts no settings.
func New() sdk.Handler { return handler{} }

type handler struct{}

// Schema is empty: a noop handler block takes no attributes.
func (handler) Schema() sdk.Schema { return sdk.Schema{} }

func (handler) Run(_ context.Context, run *sdk.Run) (*sdk.Result, error) {
	started := time.Now()
	if err := run.Decode(&struct{}{}); err != nil {
		return nil, err
	}
	return &sdk.Result{
		Metadata: map[string]string{StartedAtKey: strconv.FormatInt(started.UnixNano(), 10)},
	}, nil
}
