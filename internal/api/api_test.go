package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/fleet"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// store is an in-memory fleet.Store: the HTTP layer's tests are about status codes,
// bodies and roles; internal/fleet and the runner's end-to-end tests read real Redis.
type store struct {
	mu       sync.Mutex
	nodes    []queue.NodeSeen
	pauses   map[string]queue.Pause
	history  map[string][]queue.Record
	triggers map[string][]string
	audit    []queue.AuditEntry
	output   map[string][]queue.OutputLine
	down     bool // Redis unreachable
}

func (s *store) Stats(context.Context, map[string]int) (queue.Stats, error) {
	return queue.Stats{}, nil
}

// ReadOutput serves the lines after the cursor, a cursor being "0-N" for the first N lines.
func (s *store) ReadOutput(_ context.Context, occ, after string, _ time.Duration) (queue.OutputChunk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := 0
	if after != "" {
		fmt.Sscanf(after, "0-%d", &from)
	}
	lines := s.output[occ][min(from, len(s.output[occ])):]
	c := queue.OutputChunk{Lines: lines, Cursor: fmt.Sprintf("0-%d", from+len(lines))}
	c.End = len(lines) > 0 && lines[len(lines)-1].Final
	return c, s.check()
}

var errDown = errors.New("dial tcp 127.0.0.1:1: connect: connection refused")

func (s *store) check() error {
	if s.down {
		return errDown
	}
	return nil
}

func (s *store) Nodes(context.Context) ([]queue.NodeSeen, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes, s.check()
}

func (s *store) Pauses(_ context.Context, jobs []string) (map[string]queue.Pause, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]queue.Pause{}
	for _, j := range jobs {
		if p, ok := s.pauses[j]; ok {
			out[j] = p
		}
	}
	return out, s.check()
}

func (s *store) LastRuns(_ context.Context, jobs []string, pass func(queue.Record) bool) (map[string]queue.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]queue.Record{}
	for _, j := range jobs {
		if h := s.history[j]; len(h) > 0 {
			out[j] = h[0]
			for _, r := range h {
				if pass == nil || !pass(r) {
					out[j] = r
					break
				}
			}
		}
	}
	return out, s.check()
}

func (s *store) History(_ context.Context, job string, n int) ([]queue.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.history[job]
	return append([]queue.Record(nil), h[:min(n, len(h))]...), s.check()
}

func (s *store) Pause(_ context.Context, job string, p queue.Pause) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pauses[job] = p
	return s.check()
}

func (s *store) Resume(_ context.Context, job string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, was := s.pauses[job]
	delete(s.pauses, job)
	return was, s.check()
}

func (s *store) Trigger(_ context.Context, job string, ids ...string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.triggers[job] = append(s.triggers[job], ids...)
	return len(ids), s.check()
}

func (s *store) Audit(_ context.Context, e queue.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.At = time.Now().UTC()
	s.audit = append([]queue.AuditEntry{e}, s.audit...)
	return s.check()
}

func (s *store) AuditLog(_ context.Context, n int) ([]queue.AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.audit[:min(n, len(s.audit))], s.check()
}

const jobsHCL = `
runner { namespace = "apitest" }
job "backup" {
  schedule = "0 3 * * *"
  timezone = "Europe/Berlin"
  handler "exec" { command = ["true"] }
}
calendar "holidays" {
  dates = ["2026-12-25"]
}
job "every-second" {
  schedule = "* * * * * *"
  exclude  = ["holidays"]
  after "backup" { on = "failure" }
  handler "exec" { command = ["true"] }
}
`

type fixture struct {
	t     *testing.T
	store *store
	srv   *httptest.Server
	due   time.Time
}

// newFixture serves the API over the jobs of jobsHCL, with tokens when any are given.
func newFixture(t *testing.T, tokens string) *fixture {
	t.Helper()
	cfg, src, diags := config.Parse("jobs.hcl", []byte(jobsHCL))
	if diags.HasErrors() {
		var b strings.Builder
		_ = src.WriteDiagnostics(&b, diags)
		t.Fatal(b.String())
	}
	due := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	start, end := due.Add(12*time.Millisecond), due.Add(1500*time.Millisecond)
	st := &store{
		pauses:   map[string]queue.Pause{},
		triggers: map[string][]string{},
		output: map[string][]queue.OutputLine{"backup@2026-12-06T03:00:00.000Z": {
			{Attempt: 1, Text: "copying"}, {Attempt: 1, End: queue.StatusRetrying},
			{Attempt: 2, Text: "disk full"}, {Attempt: 2, End: queue.StatusFailed, Final: true},
		}},
		nodes: []queue.NodeSeen{{Node: queue.Node{Name: "node-a", Version: "v1", JobSetHash: "abc", Jobs: 2, Labels: map[string]string{"node": "node-a", "region": "eu"}}, Age: time.Second}},
		history: map[string][]queue.Record{"backup": {
			{Occurrence: "backup@2026-12-06T03:00:00.000Z", Job: "backup", Node: "node-a", Attempt: 2, FencingToken: 7,
				ScheduledAt: due, StartedAt: start, EndedAt: end, Status: queue.StatusFailed, Error: "exit code 3", Output: "disk full\n"},
			{Occurrence: "backup@2026-12-06T03:00:00.000Z", Job: "backup", Node: "node-b", Attempt: 1, FencingToken: 5,
				ScheduledAt: due, StartedAt: start, EndedAt: end, Status: queue.StatusRetrying, Error: "exit code 3"},
			{Occurrence: "backup@2026-12-05T03:00:00.000Z~after", Job: "backup", Node: "node-b", Attempt: 1, FencingToken: 3,
				ScheduledAt: due.Add(-23 * time.Hour), StartedAt: start.Add(-23 * time.Hour), EndedAt: end.Add(-23 * time.Hour),
				Status: queue.StatusSucceeded, Upstream: []string{"extract@2026-12-05T03:00:00.000Z"}},
			{Occurrence: "backup@2026-12-05T03:00:00.000Z~alert-late", Job: "backup", Node: "node-a", Attempt: 1, FencingToken: 4,
				ScheduledAt: due.Add(-23 * time.Hour), StartedAt: start.Add(-23 * time.Hour), EndedAt: end.Add(-23 * time.Hour), Status: queue.StatusSucceeded},
		}, "every-second": {
			// The failure alert's run succeeded after the run it is about failed for good.
			{Occurrence: "every-second@2026-12-06T03:00:00.000Z~alert-failure", Job: "every-second", Node: "node-a", Attempt: 1, FencingToken: 9,
				ScheduledAt: due, StartedAt: end, EndedAt: end, Status: queue.StatusSucceeded},
			{Occurrence: "every-second@2026-12-06T03:00:00.000Z", Job: "every-second", Node: "node-a", Attempt: 1, FencingToken: 8,
				ScheduledAt: due, StartedAt: start, EndedAt: end, Status: queue.StatusFailed, Error: "exit code 1"},
		}},
	}
	var toks []Token
	if tokens != "" {
		var err error
		if toks, err = ParseTokens("tokens", []byte(tokens)); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	srv, err := New(Deps{
		Fleet:   fleet.New(st, fleet.Config{Jobs: func() *config.Config { return cfg }}),
		Ready:   func(context.Context) error { return st.check() },
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Output:  st,
	}, Config{Tokens: toks, Node: "node-a", Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &fixture{t: t, store: st, srv: hs, due: due}
}

// call sends a request and returns its status and body, decoded as JSON into a map.
func (f *fixture) call(method, path, token, body string) (int, map[string]any) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	var m map[string]any
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &m); err != nil {
			f.t.Fatalf("%s %s: body is not JSON: %v\n%s", method, path, err, b)
		}
	}
	return res.StatusCode, m
}

// TestEndpoints: each endpoint answers its data, and each kind of bad input a 4xx whose
// JSON error says what was wrong.
func TestEndpoints(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		// want is a check of the decoded body.
		want func(m map[string]any) bool
	}{
		{"healthz", "GET", "/healthz", "", 200, func(m map[string]any) bool { return m["status"] == "ok" }},
		{"readyz", "GET", "/readyz", "", 200, func(m map[string]any) bool { return m["status"] == "ready" }},
		{"jobs", "GET", "/v1/jobs", "", 200, func(m map[string]any) bool {
			jobs, _ := m["jobs"].([]any)
			if len(jobs) != 2 {
				return false
			}
			b := jobs[0].(map[string]any)
			return b["name"] == "backup" && b["health"] == "failing" && b["timezone"] == "Europe/Berlin" && b["next"] != nil
		}},
		// Its failure alert's run succeeding does not make a failing job ok.
		{"a job whose alert ran last", "GET", "/v1/jobs?match=every", "", 200, func(m map[string]any) bool {
			jobs, _ := m["jobs"].([]any)
			if len(jobs) != 1 {
				return false
			}
			j := jobs[0].(map[string]any)
			last, _ := j["last"].(map[string]any)
			return j["health"] == "failing" && last["occurrence"] == "every-second@2026-12-06T03:00:00.000Z"
		}},
		{"jobs matching", "GET", "/v1/jobs?match=SECOND", "", 200, func(m map[string]any) bool {
			jobs, _ := m["jobs"].([]any)
			return len(jobs) == 1 && jobs[0].(map[string]any)["name"] == "every-second" && m["total"] == 1.0
		}},
		{"jobs paged", "GET", "/v1/jobs?limit=1&offset=1", "", 200, func(m map[string]any) bool {
			jobs, _ := m["jobs"].([]any)
			return len(jobs) == 1 && jobs[0].(map[string]any)["name"] == "every-second" && m["total"] == 2.0 && m["offset"] == 1.0
		}},
		{"jobs past the end", "GET", "/v1/jobs?offset=5", "", 200, func(m map[string]any) bool {
			jobs, ok := m["jobs"].([]any)
			return ok && len(jobs) == 0 && m["total"] == 2.0
		}},
		{"jobs limit too large", "GET", "/v1/jobs?limit=9999", "", 400, errorSays("want 1 to 5000 jobs")},
		{"jobs offset negative", "GET", "/v1/jobs?offset=-1", "", 400, errorSays("want 0 or more")},
		{"job", "GET", "/v1/jobs/backup?n=3", "", 200, func(m map[string]any) bool {
			fires, _ := m["fires"].([]any)
			return m["name"] == "backup" && len(fires) == 3
		}},
		{"an alert's run", "GET", "/v1/jobs/backup/runs", "", 200, func(m map[string]any) bool {
			runs, _ := m["runs"].([]any)
			last, _ := runs[len(runs)-1].(map[string]any)
			return len(runs) == 4 && last["alert"] == "late" && last["watched"] == "backup@2026-12-05T03:00:00.000Z"
		}},
		{"a job's calendars and upstreams", "GET", "/v1/jobs/every-second", "", 200, func(m map[string]any) bool {
			d, _ := m["definition"].(map[string]any)
			return fmt.Sprint(d["exclude"]) == "[holidays]" && fmt.Sprint(d["after"]) == "[backup on failure]"
		}},
		{"job runs", "GET", "/v1/jobs/backup/runs?n=1", "", 200, func(m map[string]any) bool {
			runs, _ := m["runs"].([]any)
			return len(runs) == 1 && runs[0].(map[string]any)["attempt"] == 2.0 && runs[0].(map[string]any)["duration_ms"] == 1488.0
		}},
		{"run", "GET", "/v1/runs/" + url.PathEscape("backup@2026-12-06T03:00:00.000Z"), "", 200, func(m map[string]any) bool {
			runs, _ := m["runs"].([]any)
			return m["job"] == "backup" && len(runs) == 2
		}},
		{"nodes", "GET", "/v1/nodes", "", 200, func(m map[string]any) bool {
			nodes, _ := m["nodes"].([]any)
			if len(nodes) != 1 {
				return false
			}
			n := nodes[0].(map[string]any)
			labels, _ := n["labels"].(map[string]any)
			return m["drift"] == false && n["alive"] == true && labels["region"] == "eu"
		}},
		{"audit", "GET", "/v1/audit", "", 200, func(m map[string]any) bool { _, ok := m["entries"]; return ok }},
		{"metrics", "GET", "/metrics", "", 200, nil},
		{"output", "GET", "/v1/runs/" + url.PathEscape("backup@2026-12-06T03:00:00.000Z") + "/output?after=0-2&wait=1s", "", 200, func(m map[string]any) bool {
			lines, _ := m["lines"].([]any)
			return len(lines) == 2 && lines[0].(map[string]any)["text"] == "disk full" && lines[1].(map[string]any)["end"] == "failed" &&
				m["ended"] == true && m["next"] == "0-4"
		}},
		{"output of another occurrence", "GET", "/v1/runs/" + url.PathEscape("backup@2026-12-07T03:00:00.000Z") + "/output", "", 200, func(m map[string]any) bool {
			lines, _ := m["lines"].([]any)
			return len(lines) == 0 && m["ended"] == false
		}},
		{"output wait too long", "GET", "/v1/runs/" + url.PathEscape("backup@2026-12-06T03:00:00.000Z") + "/output?wait=5m", "", 400, errorSays("from 0s to 30s")},
		{"output bad cursor", "GET", "/v1/runs/" + url.PathEscape("backup@2026-12-06T03:00:00.000Z") + "/output?after=x", "", 400, errorSays("want the next of an earlier answer")},
		{"output not an occurrence", "GET", "/v1/runs/nope/output", "", 400, errorSays("not an occurrence id")},

		{"unknown job", "GET", "/v1/jobs/nope", "", 404, errorSays(`no job "nope"`)},
		{"unknown job's action", "POST", "/v1/jobs/nope/trigger", "", 404, errorSays(`no job "nope"`)},
		{"not an occurrence id", "GET", "/v1/runs/garbage", "", 400, errorSays("not an occurrence id")},
		{"n not a number", "GET", "/v1/jobs/backup/runs?n=lots", "", 400, errorSays("n=\"lots\": want a positive integer")},
		{"n zero", "GET", "/v1/jobs/backup?n=0", "", 400, errorSays("want a positive integer")},
		{"n too many", "GET", "/v1/jobs/backup/runs?n=100000", "", 400, errorSays("want 1 to 1000 runs")},
		{"unknown endpoint", "GET", "/v1/jobz", "", 404, errorSays("no such endpoint: /v1/jobz")},
		{"wrong method", "GET", "/v1/jobs/backup/trigger", "", 405, errorSays("use POST")},
		{"wrong method on a list", "DELETE", "/v1/jobs", "", 405, errorSays("use GET")},
		{"body not JSON", "POST", "/v1/jobs/backup/pause", "note=x", 400, errorSays("not the JSON object")},
		{"unknown field", "POST", "/v1/jobs/backup/pause", `{"reason": "x"}`, 400, errorSays(`unknown field "reason"`)},
		{"field of the wrong type", "POST", "/v1/jobs/backup/pause", `{"note": 3}`, 400, errorSays(`field "note": want a JSON string`)},
		{"two values", "POST", "/v1/jobs/backup/resume", `{} {}`, 400, errorSays("more than one JSON value")},
		{"note too long", "POST", "/v1/jobs/backup/pause", `{"note": "` + strings.Repeat("x", 1001) + `"}`, 400, errorSays("at most 1000")},
		{"body too large", "POST", "/v1/jobs/backup/pause", `{"note": "` + strings.Repeat("x", 70000) + `"}`, 413, errorSays("over 65536 bytes")},
		{"backfill without range", "POST", "/v1/jobs/backup/backfill", `{}`, 400, errorSays("give the range")},
		{"backfill bad time", "POST", "/v1/jobs/backup/backfill", `{"from": "yesterday", "to": "2026-01-01T00:00:00Z"}`, 400, errorSays("not RFC 3339")},
		{"backfill in the future", "POST", "/v1/jobs/backup/backfill", `{"from": "2026-01-01T00:00:00Z", "to": "2999-01-01T00:00:00Z"}`, 400, errorSays("in the future")},
		{"backfill reversed", "POST", "/v1/jobs/backup/backfill", `{"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}`, 400, errorSays("is not after")},
		{"backfill over its limit", "POST", "/v1/jobs/every-second/backfill", `{"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z", "limit": 10}`, 400, errorSays("more than 10 occurrences")},
		{"backfill limit over the most", "POST", "/v1/jobs/backup/backfill", `{"from": "2026-01-01T00:00:00Z", "to": "2026-01-04T00:00:00Z", "limit": 1000000000, "dry_run": true}`, 400, errorSays("want 1 to 10000")},
		{"body not an object", "POST", "/v1/jobs/backup/pause", `["x"]`, 400, errorSays("want a JSON object")},
		{"backfill dry run", "POST", "/v1/jobs/backup/backfill", `{"from": "2026-01-01T00:00:00Z", "to": "2026-01-04T00:00:00Z", "dry_run": true}`, 200, func(m map[string]any) bool {
			occ, _ := m["occurrences"].([]any)
			return len(occ) == 3 && m["enqueued"] == 0.0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, m := f.call(tc.method, tc.path, "", tc.body)
			if code != tc.code {
				t.Fatalf("%s %s: %d %v, want %d", tc.method, tc.path, code, m, tc.code)
			}
			if tc.want != nil && !tc.want(m) {
				t.Errorf("%s %s: %d, body %v", tc.method, tc.path, code, m)
			}
		})
	}
	if len(f.store.triggers) != 0 || len(f.store.pauses) != 0 || len(f.store.audit) != 0 {
		t.Errorf("bad requests acted: triggers %v, pauses %v, audit %v", f.store.triggers, f.store.pauses, f.store.audit)
	}
}

func errorSays(part string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		msg, _ := m["error"].(string)
		return strings.Contains(msg, part)
	}
}

// TestActionsAreAudited: trigger, pause, resume and backfill act through the fleet and each
// is recorded with who did it.
func TestActionsAreAudited(t *testing.T) {
	f := newFixture(t, "")
	if code, m := f.call("POST", "/v1/jobs/backup/trigger", "", ""); code != 202 || !strings.HasPrefix(m["occurrence"].(string), "backup@") {
		t.Fatalf("trigger: %d %v", code, m)
	}
	if code, m := f.call("POST", "/v1/jobs/backup/pause", "", `{"note": "  disk   replaced "}`); code != 200 || m["pause"].(map[string]any)["note"] != "disk replaced" {
		t.Fatalf("pause: %d %v", code, m)
	}
	if _, m := f.call("GET", "/v1/jobs/backup", "", ""); m["health"] != "paused" {
		t.Errorf("a paused job's health is %v", m["health"])
	}
	if code, m := f.call("POST", "/v1/jobs/backup/resume", "", ""); code != 200 || m["was_paused"] != true {
		t.Fatalf("resume: %d %v", code, m)
	}
	if code, m := f.call("POST", "/v1/jobs/backup/backfill", "", `{"from": "2026-01-01T00:00:00Z", "to": "2026-01-03T00:00:00Z"}`); code != 202 || m["enqueued"] != 2.0 {
		t.Fatalf("backfill: %d %v", code, m)
	}
	if n := len(f.store.triggers["backup"]); n != 3 {
		t.Errorf("%d occurrences added, want 1 triggered and 2 backfilled", n)
	}
	_, m := f.call("GET", "/v1/audit", "", "")
	var got []string
	for _, e := range m["entries"].([]any) {
		e := e.(map[string]any)
		got = append(got, e["action"].(string)+" by "+e["by"].(string)+" via "+e["via"].(string))
	}
	want := []string{"backfill by anonymous (127.0.0.1) via http", "resume by anonymous (127.0.0.1) via http",
		"pause by anonymous (127.0.0.1) via http", "trigger by anonymous (127.0.0.1) via http"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRedisDown: reads and actions answer 503 saying Redis did not answer; readiness fails
// and liveness does not.
func TestRedisDown(t *testing.T) {
	f := newFixture(t, "")
	f.store.down = true
	for _, c := range []struct{ method, path string }{{"GET", "/v1/jobs"}, {"POST", "/v1/jobs/backup/trigger"}, {"GET", "/readyz"}} {
		if code, m := f.call(c.method, c.path, "", ""); code != 503 || !strings.Contains(m["error"].(string), "connection refused") {
			t.Errorf("%s %s with Redis down: %d %v, want 503 naming the cause", c.method, c.path, code, m)
		}
	}
	if code, _ := f.call("GET", "/healthz", "", ""); code != 200 {
		t.Errorf("healthz with Redis down: %d, want 200: the process is up", code)
	}
	// A page says Redis did not answer, as an error, and tries again by itself.
	req, _ := http.NewRequest("GET", f.srv.URL+"/", nil)
	req.Header.Set("Accept", "text/html")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`class="message failed"`, "The fleet&#39;s Redis did not answer", "connection refused", `<noscript><meta http-equiv="refresh"`, `data-refresh="5"`} {
		if res.StatusCode != 503 || !strings.Contains(string(b), want) {
			t.Errorf("the job list with Redis down: %d, the page lacks %q:\n%s", res.StatusCode, want, b)
		}
	}
}

const (
	readSecret    = "read-secret-0123456789"
	operateSecret = "operate-secret-0123456789"
)

// TestRoles: with tokens, a request without one is refused (the probes excepted), a wrong
// one too, the read role reads but cannot act, and the operate role acts under its name.
func TestRoles(t *testing.T) {
	f := newFixture(t, "read viewer "+readSecret+"\noperate alice "+operateSecret+"\n")
	for _, c := range []struct {
		method, path, token string
		code                int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"GET", "/v1/jobs", "", 401},
		{"GET", "/metrics", "", 401},
		{"GET", "/v1/jobs", "wrong-secret-0123456789", 401},
		{"GET", "/v1/jobs", readSecret, 200},
		{"GET", "/metrics", readSecret, 200},
		{"POST", "/v1/jobs/backup/trigger", "", 401},
		{"POST", "/v1/jobs/backup/trigger", readSecret, 403},
		{"POST", "/v1/jobs/backup/pause", readSecret, 403},
		{"POST", "/v1/jobs/backup/trigger", operateSecret, 202},
	} {
		if code, m := f.call(c.method, c.path, c.token, ""); code != c.code {
			t.Errorf("%s %s with token %q: %d %v, want %d", c.method, c.path, c.token, code, m, c.code)
		}
	}
	if _, m := f.call("GET", "/v1/jobs", "", ""); !errorSays("a bearer token is required")(m) {
		t.Errorf("no token: %v, want an error saying one is required", m)
	}
	if _, m := f.call("GET", "/v1/jobs", "wrong-secret-0123456789", ""); !errorSays("no token of this fleet's")(m) {
		t.Errorf("an unknown token: %v, want an error saying it is not known", m)
	}
	if n := len(f.store.triggers["backup"]); n != 1 {
		t.Errorf("%d triggers, want the operator's one", n)
	}
	if f.store.audit[0].By != "alice (127.0.0.1)" {
		t.Errorf("trigger recorded as by %q, want the token's name", f.store.audit[0].By)
	}
	// A browser without a token is sent to the login page, which keeps its token in a cookie.
	req, _ := http.NewRequest("GET", f.srv.URL+"/jobs/backup", nil)
	req.Header.Set("Accept", "text/html")
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 303 || !strings.HasPrefix(res.Header.Get("Location"), "/login?next=") {
		t.Errorf("a page without a token: %d to %q, want a redirect to the login page", res.StatusCode, res.Header.Get("Location"))
	}
	res, err = noRedirect.PostForm(f.srv.URL+"/login", url.Values{"token": {"not-it-0123456789"}, "next": {"/jobs/backup"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || len(res.Cookies()) != 0 {
		t.Errorf("login with a wrong token: %d, cookies %v", res.StatusCode, res.Cookies())
	}
	res, err = noRedirect.PostForm(f.srv.URL+"/login", url.Values{"token": {readSecret}, "next": {"/jobs/backup"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 303 || res.Header.Get("Location") != "/jobs/backup" || len(res.Cookies()) != 1 ||
		!res.Cookies()[0].HttpOnly || res.Cookies()[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d to %q, cookies %+v", res.StatusCode, res.Header.Get("Location"), res.Cookies())
	}
	req, _ = http.NewRequest("GET", f.srv.URL+"/jobs/backup", nil)
	req.AddCookie(res.Cookies()[0])
	page, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || strings.Contains(string(body), `id="trigger"`) {
		t.Errorf("the job page for the read role: %d, trigger button shown: %v", page.StatusCode, strings.Contains(string(body), `id="trigger"`))
	}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestCrossOriginPostsAreRefused: another site's page cannot make a browser act on a
// loopback dashboard without tokens.
func TestCrossOriginPostsAreRefused(t *testing.T) {
	f := newFixture(t, "")
	req, _ := http.NewRequest("POST", f.srv.URL+"/jobs/backup/trigger", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 || len(f.store.triggers) != 0 {
		t.Errorf("cross-site POST: %d, triggers %v; want 403 and nothing triggered", res.StatusCode, f.store.triggers)
	}
	// The API's refusal is JSON, as its other errors are.
	api, _ := http.NewRequest("POST", f.srv.URL+"/v1/jobs/backup/trigger", nil)
	api.Header = req.Header.Clone()
	if res, err = noRedirect.Do(api); err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	jerr := json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != 403 || jerr != nil || !strings.Contains(body["error"], "cross-origin") || len(f.store.triggers) != 0 {
		t.Errorf("cross-site POST to the API: %d, body %v (%v), triggers %v; want 403 with a JSON error", res.StatusCode, body, jerr, f.store.triggers)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", f.srv.URL)
	if res, err = noRedirect.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 303 || len(f.store.triggers["backup"]) != 1 {
		t.Errorf("same-origin POST: %d, triggers %v; want a redirect and one trigger", res.StatusCode, f.store.triggers)
	}
}

// TestListenRefusesAnOpenBind: off loopback a node serves only with tokens, and with TLS
// or the explicit opt-out; the refusal says what to give.
func TestListenRefusesAnOpenBind(t *testing.T) {
	toks, err := ParseTokens("t", []byte("operate ops "+operateSecret))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Addr: "0.0.0.0:0"}, "give bearer tokens"},
		{Config{Addr: "[::]:0"}, "give bearer tokens"},
		{Config{Addr: "0.0.0.0:0", Tokens: toks}, "-http-insecure"},
		{Config{Addr: "127.0.0.1:0", TLSCert: "cert.pem"}, "go together"},
		{Config{Addr: "nonsense"}, "want HOST:PORT"},
	} {
		ln, err := Listen(c.cfg)
		if err == nil {
			ln.Close()
			t.Errorf("Listen(%+v) served", c.cfg)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Listen(%+v): %v, want it to say %q", c.cfg, err, c.want)
		}
	}
	// A port alone is loopback, and needs nothing.
	ln, err := Listen(Config{Addr: ":0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if host := ln.Addr().String(); !strings.HasPrefix(host, "127.0.0.1:") {
		t.Errorf(":0 listens on %s, want loopback", host)
	}
}

// TestParseTokens: a tokens file's mistakes name the line and never show a secret.
func TestParseTokens(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"admin bob secret-0123456789abcdef", "tokens:1: role \"admin\": want read or operate"},
		{"# comment\n\nread bob", "tokens:3: want ROLE NAME SECRET"},
		{"read bob short", "tokens:1: the secret of \"bob\" has 5 characters; at least 16"},
		{"read bob secret-0123456789abcdef\noperate bob secret-0123456789abcdeg", "tokens:2: a second token named \"bob\""},
	} {
		_, err := ParseTokens("tokens", []byte(c.src))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("ParseTokens(%q): %v, want %q", c.src, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "secret-") || strings.Contains(err.Error(), "short")) {
			t.Errorf("the error shows a secret: %v", err)
		}
	}
}

// TestPagesReadWithoutJavaScript: every page renders on the server with its data: the job
// list with health marks, the job page with a timeline bar per run that ran and its action
// buttons, the run page with its output, the nodes and the audit log.
func TestPagesReadWithoutJavaScript(t *testing.T) {
	f := newFixture(t, "")
	if code, _ := f.call("POST", "/v1/jobs/backup/pause", "", `{"note": "disk replaced"}`); code != 200 {
		t.Fatal(code)
	}
	for _, c := range []struct {
		path string
		want []string
	}{
		{"/", []string{`href="/jobs/backup"`, `class="mark paused"`, `class="mark failing"`, "Europe/Berlin", "1 of 1 nodes alive", "disk replaced"}},
		{"/jobs/backup", []string{"alert: late", `after <a href="/runs/extract@2026-12-05T03:00:00.000Z">`, `href="/runs/backup@2026-12-05T03:00:00.000Z"`, `<svg class="timeline"`, `<g class="bar failed">`, `<g class="bar retrying">`, `<g class="bar succeeded alert"><title>late alert about backup@2026-12-05T03:00:00.000Z`, "node-a", "node-b",
			`id="trigger"`, `id="resume"`, "Paused fleet-wide", "exit code 3", "Next fires"}},
		{"/runs/" + url.PathEscape("backup@2026-12-06T03:00:00.000Z"), []string{"copying\n[attempt 1 ended: retrying]\ndisk full", `id="output"`, "node-b", "data-ended"}},
		{"/nodes", []string{"node-a", "alive", "abc", "region=eu"}},
		{"/audit", []string{"pause", "anonymous (127.0.0.1)", "disk replaced"}},
	} {
		req, _ := http.NewRequest("GET", f.srv.URL+c.path, nil)
		req.Header.Set("Accept", "text/html")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("GET %s: %d\n%s", c.path, res.StatusCode, b)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("GET %s: the page lacks %q", c.path, w)
			}
		}
		if !strings.HasPrefix(c.path, "/runs/") && !strings.Contains(string(b), `<noscript><meta http-equiv="refresh"`) {
			t.Errorf("GET %s: no refresh without JavaScript", c.path)
		}
	}
	// An error page is HTML with the pages' headers, under its own status.
	req, _ := http.NewRequest("GET", f.srv.URL+"/jobs/nope", nil)
	req.Header.Set("Accept", "text/html")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 || res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET /jobs/nope: %d, headers %v; want 404 with the pages' headers", res.StatusCode, res.Header)
	}
}
