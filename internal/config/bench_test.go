package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"

	"github.com/cronfleet/cronfleet/internal/config"
	"github.com/cronfleet/cronfleet/internal/jobgen"
)

// benchSchemas are the built-in exec and http handlers' attributes, as the runner hands
// them to DecodeHandlers.
func benchSchemas(plugin string) ([]config.HandlerAttribute, error) {
	switch plugin {
	case "exec":
		return []config.HandlerAttribute{
			{Name: "command", Type: "list(string)"}, {Name: "shell", Type: "string"},
			{Name: "env", Type: "map(string)"}, {Name: "dir", Type: "string"}, {Name: "user", Type: "string"},
		}, nil
	case "http":
		return []config.HandlerAttribute{
			{Name: "url", Type: "string", Required: true}, {Name: "method", Type: "string", Default: []byte(`"GET"`)},
			{Name: "headers", Type: "map(string)"}, {Name: "body", Type: "string"},
			{Name: "expect_status", Type: "list(number)"}, {Name: "timeout", Type: "string", Default: []byte(`"30s"`)},
			{Name: "tls_ca_file", Type: "string"}, {Name: "tls_cert_file", Type: "string"},
			{Name: "tls_key_file", Type: "string"}, {Name: "tls_insecure_skip_verify", Type: "bool", Default: []byte("false")},
		}, nil
	}
	return nil, fmt.Errorf("no plugin %q", plugin)
}

func benchChecks(string, json.RawMessage) ([]config.HandlerProblem, error) { return nil, nil }

// load loads src as the runner does: the job file, then its handler blocks against their
// plugins' schemas and checks (here answered in process, without plugin processes).
func load(b *testing.B, src []byte) *config.Config {
	cfg, _, diags := config.Parse("jobs.hcl", src)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	if diags := cfg.DecodeHandlers(benchSchemas); diags.HasErrors() {
		b.Fatal(diags)
	}
	if diags := cfg.CheckHandlers(benchChecks); diags.HasErrors() {
		b.Fatal(diags)
	}
	cfg.Compact()
	return cfg
}

// BenchmarkLoad loads job files of realistic jobs (internal/jobgen) as the runner does at
// start. Besides time and allocations per load, it reports live-B/job: the heap a loaded
// job set keeps, per job, which is what a node holds for as long as it runs that set.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) {
			var src bytes.Buffer
			if err := jobgen.Write(&src, jobgen.Config{Jobs: n, Seed: 1, Namespace: "bench"}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(src.Len()))
			for b.Loop() {
				load(b, src.Bytes())
			}
			b.StopTimer()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			cfg := load(b, src.Bytes())
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(cfg)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "live-B/job")
		})
	}
}
