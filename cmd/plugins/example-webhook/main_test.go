package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/plugin/sdk"
	"github.com/cronfleet/cronfleet/plugin/sdk/sdktest"
)

func TestWebhook(t *testing.T) {
	type request struct {
		ContentType, IdempotencyKey string
		Payload                     map[string]any
	}
	got := make(chan request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := request{ContentType: r.Header.Get("Content-Type"), IdempotencyKey: r.Header.Get("Idempotency-Key")}
		if err := json.Unmarshal(b, &req.Payload); err != nil {
			t.Errorf("payload %q: %v", b, err)
		}
		got <- req
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	// sdktest runs the handler as the runner would: settings checked
	// against the Schema, output collected line by line.
	res, lines, err := sdktest.Run(t, webhook{}, sdktest.Occurrence{
		Job:          "nightly",
		ScheduledAt:  time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC),
		OccurrenceID: "nightly@1795662000",
	}, map[string]any{"url": srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	want := request{
		ContentType:    "application/json",
		IdempotencyKey: "nightly@1795662000",
		Payload: map[string]any{
			"job": "nightly", "scheduled_at": "2026-11-26T03:00:00Z", "attempt": 1.0, "occurrence": "nightly@1795662000",
		},
	}
	if diff := cmp.Diff(want, <-got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&sdk.Result{Message: "204 No Content", Metadata: map[string]string{"status_code": "204"}}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if len(lines) != 1 || !strings.HasSuffix(lines[0], ": 204 No Content") {
		t.Errorf("output lines = %q", lines)
	}
}

func TestSettingsRejected(t *testing.T) {
	for _, settings := range []string{`{}`, `{"ulr":"http://x/"}`, `{"url":1}`, `{"url":"ftp://x/"}`, `{"url":"hooks.example"}`} {
		if err := sdktest.CheckSettings(webhook{}, settings); err == nil {
			t.Errorf("settings %s passed the schema", settings)
		}
	}
}

func TestWebhookFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	res, _, err := sdktest.Run(t, webhook{}, sdktest.Occurrence{}, map[string]any{"url": srv.URL})
	if err == nil || !strings.Contains(err.Error(), "503 Service Unavailable") || res.Metadata["status_code"] != "503" {
		t.Errorf("got %+v, %v; want the 503 as result and error", res, err)
	}
}
