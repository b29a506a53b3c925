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

	res, err := webhook{}.Run(t.Context(), &sdk.Run{
		Job:          "nightly",
		ScheduledAt:  time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC),
		Attempt:      1,
		OccurrenceID: "nightly@1795662000",
		Settings:     []byte(`{"url":"` + srv.URL + `"}`),
	})
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
}

func TestSchema(t *testing.T) {
	if err := (webhook{}).Schema().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (webhook{}).Schema().CheckSettings([]byte(`{"ulr":"http://x/"}`)); err == nil {
		t.Error("a misspelled attribute passed the schema")
	}
}

func TestWebhookFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct{ settings, wantErr string }{
		{`{"url":"` + srv.URL + `"}`, "503 Service Unavailable"},
		{`{"ulr":"` + srv.URL + `"}`, `unknown field "ulr"`},
	} {
		_, err := webhook{}.Run(t.Context(), &sdk.Run{Settings: []byte(tc.settings)})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("settings %s: err = %v, want it to contain %q", tc.settings, err, tc.wantErr)
		}
	}
}
