// Command example-webhook is a complete cronfleet handler plugin, written
// the way you would write your own: it posts a small JSON document about
// each occurrence to a webhook. docs/plugins.md walks through it.
//
// Build it, drop the binary into the runner's plugin directory, and use
// its file name as the handler's name in a job:
//
//	handler "example-webhook" {
//	  url = "https://hooks.example/cron"
//	}
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	// The only cronfleet package a plugin imports.
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// settings mirrors the job's handler block, as JSON.
type settings struct {
	URL string `json:"url"`
}

// webhook is the handler. The runner calls Run once per occurrence attempt,
// possibly concurrently, so it keeps no per-run state in the struct.
type webhook struct{}

// Schema declares the handler block's attributes. The runner checks every
// job file against it before anything runs: `runner validate` points at a
// missing url, a misspelled attribute or a wrong type by file:line:col.
func (webhook) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "url", Type: sdk.TypeString, Required: true, Description: "The webhook to post to."},
	}}
}

// Check finds what the Schema cannot say: here, that url is a URL we can
// post to. `runner validate` reports it at the url line of the job file,
// before anything runs. Run makes the same check, so one function does both.
func (webhook) Check(run *sdk.Run) error {
	var s settings
	if err := run.Decode(&s); err != nil {
		return err
	}
	return s.check()
}

func (s settings) check() error {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return sdk.InvalidSetting("url", "%q is not an http:// or https:// URL", s.URL)
	}
	return nil
}

// Run posts the occurrence to the webhook. ctx ends when the occurrence is
// cancelled (its timeout, a lost lease, shutdown): pass it to all I/O.
func (webhook) Run(ctx context.Context, run *sdk.Run) (*sdk.Result, error) {
	var s settings
	if err := run.Decode(&s); err != nil {
		return nil, err // settings the Schema let through but the struct lacks
	}
	if err := s.check(); err != nil {
		return nil, sdk.Permanent(err) // every attempt would fail the same way
	}
	// run carries the occurrence. OccurrenceID is the same for every attempt
	// on every node: receivers can use it to drop duplicates.
	payload, err := json.Marshal(map[string]any{
		"job":          run.Job,
		"scheduled_at": run.ScheduledAt,
		"attempt":      run.Attempt,
		"occurrence":   run.OccurrenceID,
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: encode payload: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", run.OccurrenceID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err) // a returned error fails the attempt; the runner retries per the job
	}
	resp.Body.Close()
	// Lines written to run.Output() reach the runner while Run runs; the
	// last ones are kept in the job's history.
	fmt.Fprintf(run.Output(), "posted %d bytes to %s: %s\n", len(payload), s.URL, resp.Status)
	// The Result is kept in the job's history: a short message and small
	// key/value metadata. It may accompany an error, too.
	res := &sdk.Result{Message: resp.Status, Metadata: map[string]string{"status_code": strconv.Itoa(resp.StatusCode)}}
	if resp.StatusCode >= 300 {
		return res, fmt.Errorf("webhook: %s answered %s", s.URL, resp.Status)
	}
	return res, nil
}

// main hands the handler to the SDK, which speaks to the runner and exits
// when the runner is done with the plugin.
func main() { sdk.Serve(webhook{}) }
