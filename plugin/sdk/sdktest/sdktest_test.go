package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/plugin/handlers/exec"
	"github.com/cronfleet/cronfleet/plugin/handlers/noop"
	"github.com/cronfleet/cronfleet/plugin/sdk"
	"github.com/cronfleet/cronfleet/plugin/sdk/sdktest"
)

func TestOccurrenceAndDefaults(t *testing.T) {
	var got *sdk.Run
	var settings struct {
		Greeting string `json:"greeting"`
		Loud     bool   `json:"loud"`
	}
	h := sdk.Func(sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "greeting", Type: sdk.TypeString, Default: "hello"},
		{Name: "loud", Type: sdk.TypeBool},
	}}, func(_ context.Context, r *sdk.Run) (*sdk.Result, error) {
		got = r
		if err := r.Decode(&settings); err != nil {
			return nil, err
		}
		fmt.Fprintf(r.Output(), "%s\n%s", settings.Greeting, r.OccurrenceID)
		return &sdk.Result{Message: "greeted"}, nil
	})
	res, lines, err := sdktest.Run(t, h, sdktest.Occurrence{Job: "greet", Attempt: 2}, map[string]any{"loud": true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Message != "greeted" || !settings.Loud {
		t.Errorf("result %+v, settings %+v", res, settings)
	}
	if diff := cmp.Diff([]string{"hello", "greet@2026-01-01T00:00:00Z"}, lines); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if got.Attempt != 2 || got.FencingToken != 1 || got.Node != "sdktest" || !got.ScheduledAt.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("run = %+v", got)
	}
}

func TestCheckSettings(t *testing.T) {
	for _, tc := range []struct {
		settings any
		wantErr  string
	}{
		{settings: `{"command":["true"]}`},
		{settings: []byte(`{"shell":"true","env":{"A":"b"}}`)},
		{settings: map[string]any{"comand": []string{"true"}}, wantErr: `unknown attribute "comand"`},
		{settings: `{"command":"true"}`, wantErr: `"command": "true" is not a list(string)`},
		{settings: `[]`, wantErr: "not a JSON object"},
	} {
		err := sdktest.CheckSettings(exec.New(), tc.settings)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckSettings(%s) = %v, want %q", tc.settings, err, tc.wantErr)
		}
	}
	if err := sdktest.CheckSettings(noop.New(), `{"x":1}`); err == nil {
		t.Error("noop accepted an attribute")
	}
	bad := sdk.Func(sdk.Schema{Attributes: []sdk.Attribute{{Name: "x", Type: "string "}}}, nil)
	if err := sdktest.CheckSettings(bad, nil); err == nil || !strings.Contains(err.Error(), "invalid schema") {
		t.Errorf("invalid schema: err = %v", err)
	}
}

func TestExecThroughSDKTest(t *testing.T) {
	res, lines, err := sdktest.Run(t, exec.New(), sdktest.Occurrence{Job: "j"}, `{"shell":"echo $CRONFLEET_JOB; exit 3"}`)
	if err == nil || sdk.IsPermanent(err) {
		t.Errorf("err = %v, want a retryable failure", err)
	}
	if diff := cmp.Diff([]string{"j"}, lines); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if res.Metadata["exit_code"] != "3" {
		t.Errorf("result = %+v", res)
	}
}

func TestRunContextCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, _, err := sdktest.RunContext(ctx, t, exec.New(), sdktest.Occurrence{}, `{"command":["sleep","300"]}`)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the deadline", err)
	}
}

func TestPanicBecomesError(t *testing.T) {
	h := sdk.HandlerFunc(func(context.Context, *sdk.Run) (*sdk.Result, error) { panic("boom") })
	if _, _, err := sdktest.Run(t, h, sdktest.Occurrence{}, nil); err == nil || !strings.Contains(err.Error(), "panicked: boom") {
		t.Errorf("err = %v", err)
	}
}
