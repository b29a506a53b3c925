package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// TestGolden loads every testdata/*.hcl file and every directory under
// testdata (except fuzz) and compares the rendered diagnostics, followed by a
// summary of the decoded config if there were no errors, with NAME.golden.
func TestGolden(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() && name == "fuzz" || !e.IsDir() && !strings.HasSuffix(name, ".hcl") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			cfg, src, diags := Load(path)
			if (cfg == nil) != diags.HasErrors() {
				t.Errorf("Load(%q): config is nil: %v, diagnostics have errors: %v", path, cfg == nil, diags.HasErrors())
			}
			// The ranges first, as FILE:LINE,COL-…, to pin the exact
			// columns, which the rendered text does not show.
			var got bytes.Buffer
			for _, d := range diags {
				fmt.Fprintf(&got, "%s: %s\n", d.Subject, d.Summary)
			}
			if len(diags) > 0 {
				got.WriteString("\n")
			}
			if err := src.WriteDiagnostics(&got, diags); err != nil {
				t.Fatal(err)
			}
			if cfg != nil {
				writeSummary(&got, cfg)
			}
			golden := strings.TrimSuffix(path, ".hcl") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("%s differs (-want +got), run go test -update if the change is intended:\n%s", golden, diff)
			}
		})
	}
	if n < 10 {
		t.Fatalf("found only %d test inputs in testdata", n)
	}
}

// writeSummary prints what a golden file should pin of a valid config,
// including the hashes, which must stay stable across releases.
func writeSummary(w *bytes.Buffer, cfg *Config) {
	fmt.Fprintf(w, "runner namespace=%s lease=%s\n", cfg.Runner.Namespace, cfg.Runner.Lease)
	for _, j := range cfg.Jobs {
		fmt.Fprintf(w, "job %s at %s:%d,%d\n", j.Name, j.DeclRange.Filename, j.DeclRange.Start.Line, j.DeclRange.Start.Column)
		fmt.Fprintf(w, "  schedule=%q timezone=%s timeout=%s\n", j.Schedule, j.Timezone, j.Timeout)
		if len(j.Schedules) > 1 || j.DSTGap != cron.GapShift || j.DSTRepeat != cron.RepeatOnceFirst || !j.StartAt.IsZero() || !j.EndAt.IsZero() || j.MaxRuns != 0 || j.Jitter != 0 {
			fmt.Fprintf(w, "  schedules=%q dst_gap=%s dst_repeat=%s start_at=%s end_at=%s max_runs=%d jitter=%s\n",
				j.Schedules, j.DSTGap, j.DSTRepeat, j.StartAt.Format(time.RFC3339), j.EndAt.Format(time.RFC3339), j.MaxRuns, j.Jitter)
			next := j.Sched.Next(time.Date(2026, time.March, 28, 0, 0, 0, 0, time.UTC))
			fmt.Fprintf(w, "  first after 2026-03-28T00:00:00Z: %s\n", next.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(w, "  overlap=%s catchup=%s catchup_window=%s\n", j.Policy.Overlap, j.Policy.Catchup, j.Policy.CatchupWindow)
		fmt.Fprintf(w, "  retry attempts=%d backoff=%s max_backoff=%s\n", j.Retry.Attempts, j.Retry.Backoff, j.Retry.MaxBackoff)
		fmt.Fprintf(w, "  handler %s %s\n", j.Handler.Plugin, j.Handler.Settings)
		if a := j.Alert; a != nil {
			fmt.Fprintf(w, "  alert on=%v late_after=%s retry attempts=%d backoff=%s timeout=%s handler %s %s\n",
				a.On, a.LateAfter, a.Retry.Attempts, a.Retry.Backoff, a.Timeout, a.Handler.Plugin, a.Handler.Settings)
		}
		if j.Broadcast || j.Shards > 0 {
			fmt.Fprintf(w, "  broadcast=%v shards=%d max_concurrent=%d\n", j.Broadcast, j.Shards, j.MaxConcurrent)
		}
		for _, a := range j.After {
			fmt.Fprintf(w, "  after %s on=%s\n", a.Job, a.On)
		}
		if len(j.Exclude) > 0 {
			var names []string
			for _, c := range j.Exclude {
				names = append(names, c.Name())
			}
			fmt.Fprintf(w, "  exclude=%q\n", names)
		}
		fmt.Fprintf(w, "  hash %s\n", j.Hash)
	}
	for _, p := range cfg.Plugins {
		fmt.Fprintf(w, "plugin %s path=%s sha256=%s max_concurrent=%d\n", p.Name, p.Path, p.SHA256, p.MaxConcurrent)
	}
	for _, c := range cfg.Calendars {
		zone := "(each job's)"
		if c.Location() != nil {
			zone = c.Location().String()
		}
		fmt.Fprintf(w, "calendar %s timezone=%s sha256=%s\n", c.Name(), zone, c.Digest())
		for _, r := range c.Ranges() {
			fmt.Fprintf(w, "  %s..%s\n", r.From, r.To)
		}
	}
}

func TestLoadValid(t *testing.T) {
	cfg, src, diags := Load("testdata/valid.hcl")
	if diags.HasErrors() {
		var b bytes.Buffer
		_ = src.WriteDiagnostics(&b, diags)
		t.Fatalf("Load: %s", b.String())
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	rng := func(line, col, endCol int) hcl.Range {
		return hcl.Range{
			Filename: "testdata/valid.hcl",
			Start:    hcl.Pos{Line: line, Column: col},
			End:      hcl.Pos{Line: line, Column: endCol},
		}
	}
	defaults := queue.Policy{Overlap: queue.OverlapSkip, Catchup: queue.CatchupLatest, CatchupWindow: 24 * time.Hour} // as documented
	want := &Config{
		Runner: Runner{Namespace: "team-a_prod", Lease: 45 * time.Second},
		Jobs: []*Job{
			{
				Name:      "Heartbeat.v2",
				Schedule:  "@every 90s",
				Schedules: []string{"@every 90s"},
				Timezone:  "UTC",
				Location:  time.UTC,
				Retry:     Retry{Attempts: 3, Backoff: 10 * time.Second, MaxBackoff: 10 * time.Minute},
				Policy:    defaults,
				Priority:  queue.DefaultPriority,
				Handler:   Handler{Plugin: "http", Settings: json.RawMessage(`{}`), LabelRange: rng(27, 11, 17), DefRange: rng(27, 3, 17)},
				DeclRange: rng(25, 1, 19),
			},
			{
				Name:      "a_first",
				Schedule:  "@daily",
				Schedules: []string{"@daily"},
				Timezone:  "UTC",
				Location:  time.UTC,
				Retry:     Retry{Attempts: 3, Backoff: 10 * time.Second, MaxBackoff: 10 * time.Minute},
				Policy:    defaults,
				Priority:  queue.DefaultPriority,
				Handler:   Handler{Plugin: "exec", Settings: json.RawMessage(`{"command":["true"]}`), LabelRange: rng(33, 11, 17), DefRange: rng(33, 3, 17)},
				DeclRange: rng(30, 1, 14),
			},
			{
				Name:      "db-backup",
				Schedule:  "0 30 2 * * *",
				Schedules: []string{"0 30 2 * * *"},
				Timezone:  "Europe/Berlin",
				Location:  berlin,
				Timeout:   20 * time.Minute,
				Retry:     Retry{Attempts: 5, Backoff: 30 * time.Second, MaxBackoff: time.Hour},
				Policy:    defaults,
				Priority:  queue.DefaultPriority,
				Handler: Handler{
					Plugin: "exec",
					Settings: json.RawMessage(`{"command":["pg_dump","-Fc","-f","/backups/app.dump","app"],` +
						`"env":{"PGHOST":"db.internal","PGPORT":5432},"nice":1.5,"note":"started at 2:30 Berlin time","shell":false}`),
					LabelRange: rng(16, 11, 17),
					DefRange:   rng(16, 3, 17),
				},
				DeclRange: rng(7, 1, 16),
			},
		},
	}
	opts := cmp.Options{
		// Byte offsets, bodies, parsed schedules and hashes are checked elsewhere.
		cmpopts.IgnoreFields(hcl.Pos{}, "Byte"),
		cmpopts.IgnoreFields(Handler{}, "Body"),
		cmpopts.IgnoreFields(Job{}, "Sched", "Hash"),
		cmpopts.IgnoreUnexported(Config{}, Handler{}),
		cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() }),
		cmp.Transformer("json", func(m json.RawMessage) string { return string(m) }),
	}
	if diff := cmp.Diff(want, cfg, opts); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}

	for _, j := range cfg.Jobs {
		if j.Sched == nil || j.Handler.Body == nil || len(j.Hash) != 64 {
			t.Errorf("job %s: Sched %v, Body %v, Hash %q", j.Name, j.Sched, j.Handler.Body, j.Hash)
		}
	}
	// The schedule is read in the job's zone: 02:30 Berlin is 00:30 UTC in summer.
	backup := cfg.Jobs[2]
	got := backup.Sched.Next(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 7, 1, 0, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("db-backup next after 2026-07-01T00:00Z = %v, want %v", got, want)
	}
	// A plugin can unmarshal its settings into its own struct.
	var exec struct {
		Command []string          `json:"command"`
		Env     map[string]string `json:"env"`
	}
	if err := json.Unmarshal(backup.Handler.Settings, &exec); err == nil {
		t.Errorf("PGPORT is a number, want an unmarshal error into map[string]string")
	}
	var loose struct {
		Command []string       `json:"command"`
		Env     map[string]any `json:"env"`
	}
	if err := json.Unmarshal(backup.Handler.Settings, &loose); err != nil || len(loose.Command) != 5 || loose.Env["PGHOST"] != "db.internal" {
		t.Errorf("unmarshal settings: %v, %+v", err, loose)
	}
}

func TestLoadDirectoryAndFiles(t *testing.T) {
	// A directory, and the same files named one by one, give the same config;
	// a file named twice (directly and through its directory) is read once.
	fromDir, _, diags := Load("testdata/multi")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	fromFiles, _, diags := Load("testdata/multi/30-more.hcl", "testdata/multi/10-runner.hcl", "testdata/multi/20-jobs.hcl", "testdata/multi/")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	opts := cmp.Options{
		cmpopts.IgnoreFields(Job{}, "Sched"),
		cmpopts.IgnoreFields(Handler{}, "Body"), // the settings are compared
		cmpopts.IgnoreUnexported(Config{}, Handler{}),
		cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() }),
	}
	if diff := cmp.Diff(fromDir, fromFiles, opts); diff != "" {
		t.Errorf("Load(dir) vs Load(files) (-dir +files):\n%s", diff)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		paths   []string
		summary string
	}{
		{"no paths", nil, "No job files"},
		{"missing file", []string{filepath.Join(dir, "nope.hcl")}, "Failed to read job files"},
		{"empty directory", []string{empty}, "No job files"},
		{"runner in two paths", []string{"testdata/valid.hcl", "testdata/multi"}, "Duplicate runner block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, src, diags := Load(tc.paths...)
			if cfg != nil || !diags.HasErrors() {
				t.Fatalf("Load(%q) = %v, %v; want errors", tc.paths, cfg, diags)
			}
			if diags[0].Summary != tc.summary {
				t.Errorf("first summary %q, want %q", diags[0].Summary, tc.summary)
			}
			if err := src.WriteDiagnostics(&bytes.Buffer{}, diags); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestParseMatchesLoad(t *testing.T) {
	data, err := os.ReadFile("testdata/valid.hcl")
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, diags := Parse("testdata/valid.hcl", data)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	loaded, _, _ := Load("testdata/valid.hcl")
	for i := range loaded.Jobs {
		if parsed.Jobs[i].Hash != loaded.Jobs[i].Hash {
			t.Errorf("job %s: Parse hash %s, Load hash %s", loaded.Jobs[i].Name, parsed.Jobs[i].Hash, loaded.Jobs[i].Hash)
		}
	}
}

func TestHash(t *testing.T) {
	const base = `job "j" {
  schedule = "@daily"
  handler "exec" {
    command = ["a", "b"]
    env     = { A = "1", B = "2" }
  }
}
`
	hash := func(t *testing.T, src string) string {
		t.Helper()
		cfg, _, diags := Parse("j.hcl", []byte(src))
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return cfg.Jobs[0].Hash
	}
	h := hash(t, base)
	same := map[string]string{
		"reordered and reformatted":  "# moved around\njob \"j\" {\n  handler \"exec\" {\n    env = {\n      B = \"2\"\n      A = \"1\"\n    }\n    command = [\"a\", \"b\"]\n  }\n  schedule = \"@daily\"\n}\n",
		"explicit defaults":          strings.Replace(base, "@daily\"", "@daily\"\n  timezone = \"UTC\"\n  timeout = \"0s\"\n  retry {\n    attempts = 3\n    backoff = \"10s\"\n    max_backoff = \"10m\"\n  }", 1),
		"defaults spelled otherwise": strings.Replace(base, "@daily\"", "@daily\"\n  timezone = \"\"\n  retry {\n    max_backoff = \"600s\"\n  }", 1),
	}
	for name, src := range same {
		if got := hash(t, src); got != h {
			t.Errorf("%s: hash %s, want %s", name, got, h)
		}
	}
	differ := map[string]string{
		"schedule": strings.Replace(base, "@daily", "@hourly", 1),
		"zone":     strings.Replace(base, "@daily\"", "@daily\"\n  timezone = \"Europe/Berlin\"", 1),
		"timeout":  strings.Replace(base, "@daily\"", "@daily\"\n  timeout = \"1m\"", 1),
		"retry":    strings.Replace(base, "@daily\"", "@daily\"\n  retry {\n    attempts = 4\n  }", 1),
		"plugin":   strings.Replace(base, "\"exec\"", "\"exec2\"", 1),
		"settings": strings.Replace(base, "\"b\"", "\"c\"", 1),
	}
	for name, src := range differ {
		if got := hash(t, src); got == h {
			t.Errorf("changed %s: hash did not change", name)
		}
	}
	if renamed := hash(t, strings.Replace(base, `job "j"`, `job "k"`, 1)); renamed != h {
		t.Errorf("renaming the job changed its hash")
	}
}

func TestRetryDelay(t *testing.T) {
	r := Retry{Attempts: 10, Backoff: 10 * time.Second, MaxBackoff: time.Minute}
	for _, tc := range []struct {
		retry   Retry
		attempt int
		want    time.Duration
	}{
		{r, 0, 10 * time.Second},
		{r, 1, 10 * time.Second},
		{r, 2, 20 * time.Second},
		{r, 3, 40 * time.Second},
		{r, 4, time.Minute},
		{r, 1 << 40, time.Minute},
		{Retry{Backoff: time.Minute, MaxBackoff: time.Minute}, 5, time.Minute},
		{Retry{Backoff: 0, MaxBackoff: time.Minute}, 5, 0},
		{Retry{}, 3, 0},
		{Retry{Backoff: 3, MaxBackoff: 1<<63 - 1}, 70, 1<<63 - 1},
		{Retry{Backoff: 1 << 62, MaxBackoff: 1<<63 - 1}, 2, 1<<63 - 1},
		{Retry{Backoff: time.Second, MaxBackoff: 1<<63 - 1}, 63, 1<<63 - 1},
		{Retry{Backoff: -time.Second, MaxBackoff: time.Minute}, 2, 0},
	} {
		if got := tc.retry.Delay(tc.attempt); got != tc.want {
			t.Errorf("%+v.Delay(%d) = %v, want %v", tc.retry, tc.attempt, got, tc.want)
		}
	}
}

func TestCheckPlugins(t *testing.T) {
	cfg, _, diags := Load("testdata/valid.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if diags := cfg.CheckPlugins(func(string) bool { return true }); len(diags) != 0 {
		t.Errorf("all plugins known: %v", diags)
	}
	diags = cfg.CheckPlugins(func(name string) bool { return name == "exec" })
	var got []string
	for _, d := range diags {
		got = append(got, fmt.Sprintf("%s: %s: %s", d.Subject, d.Summary, d.Detail))
	}
	want := []string{`testdata/valid.hcl:27,11-17: Unknown plugin: Job "Heartbeat.v2" uses the plugin "http", which this runner does not have.`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CheckPlugins (-want +got):\n%s", diff)
	}

	// A plugin block without a path sets limits for a plugin the runner has; naming
	// one it does not have is an error at the label.
	cfg, _, diags = Load("testdata/plugin_settings.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if n := cfg.Plugins[0].MaxConcurrent; n != 2 {
		t.Errorf("exec max_concurrent = %d, want 2", n)
	}
	got = nil
	for _, d := range cfg.CheckPlugins(func(name string) bool { return name == "exec" }) {
		got = append(got, fmt.Sprintf("%s: %s: %s", d.Subject, d.Summary, d.Detail))
	}
	want = []string{`testdata/plugin_settings.hcl:5,8-16: Unknown plugin: The plugin block "nosuch" has no path, and this runner has no plugin of that name.`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CheckPlugins on path-less plugin blocks (-want +got):\n%s", diff)
	}
}

func TestNames(t *testing.T) {
	long := strings.Repeat("a", 128)
	for _, tc := range []struct {
		name    string
		job, ns bool
	}{
		{"a", true, true},
		{"db-backup", true, true},
		{"Db.Backup_2", true, false},
		{long, true, false},
		{long + "a", false, false},
		{"", false, false},
		{"-a", false, false},
		{".a", false, false},
		{"a b", false, false},
		{"a@b", false, false},
		{"a{b}", false, false},
		{"a:b", false, false},
		{"é", false, false},
		{"a/b", false, false},
	} {
		if got := checkJobName(tc.name) == ""; got != tc.job {
			t.Errorf("checkJobName(%q) ok = %v, want %v", tc.name, got, tc.job)
		}
		if got := checkNamespace(tc.name) == ""; got != tc.ns {
			t.Errorf("checkNamespace(%q) ok = %v, want %v", tc.name, got, tc.ns)
		}
	}
}

func TestRunnerRedisTLSFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "jobs.hcl")
	src := `runner {
  redis_tls_ca   = "certs/ca.pem"
  redis_tls_cert = "/etc/cronfleet/client.pem"
  redis_tls_key  = ""
}
job "a" {
  schedule = "@hourly"
  handler "noop" {}
}
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, diags := Load(file)
	if !diags.HasErrors() || diags[0].Summary != "Empty path" || diags[0].Subject.Start.Line != 4 {
		t.Fatalf("an empty redis_tls_key: %v, want \"Empty path\" at line 4", diags)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(src, `  redis_tls_key  = ""`+"\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, diags := Load(file)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := RedisTLS{CA: filepath.Join(dir, "certs/ca.pem"), Cert: "/etc/cronfleet/client.pem"}
	if cfg.Runner.RedisTLS != want {
		t.Errorf("RedisTLS = %+v, want %+v (relative to the job file)", cfg.Runner.RedisTLS, want)
	}
}
