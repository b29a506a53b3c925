package pluginhost

import (
	"slices"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/plugin/handlers/noop"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// BenchmarkPluginBoundary measures the noop handler through one plugin
// process against calling it in-process (sdk.Call, which Serve uses too).
//
//	sequential: one run at a time; reports the latency quantiles of a run
//	            through the plugin (p50_us, p99_us), of the same call
//	            in-process (inproc_p50_us, inproc_p99_us) and their
//	            difference, the cost of the boundary (overhead_p50_us,
//	            overhead_p99_us)
//	parallel:   GOMAXPROCS concurrent callers on one plugin process;
//	            reports runs/s
func BenchmarkPluginBoundary(b *testing.B) {
	h := New(Config{Builtins: map[string][]string{"noop": {build(b, b.TempDir(), "../../cmd/plugins/noop")}}})
	b.Cleanup(func() { _ = h.Close() })
	if _, err := h.Run(b.Context(), "noop", &sdk.Run{}, nil); err != nil { // start it
		b.Fatal(err)
	}

	b.Run("sequential", func(b *testing.B) {
		inproc := make([]time.Duration, 0, 10000)
		handler := noop.New()
		for range cap(inproc) {
			start := time.Now()
			if _, err := sdk.Call(b.Context(), handler, &sdk.Run{Job: "bench"}, nil); err != nil {
				b.Fatal(err)
			}
			inproc = append(inproc, time.Since(start))
		}
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for b.Loop() {
			start := time.Now()
			if _, err := h.Run(b.Context(), "noop", &sdk.Run{Job: "bench"}, nil); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		p50, p99 := quantile(lat, 0.50), quantile(lat, 0.99)
		i50, i99 := quantile(inproc, 0.50), quantile(inproc, 0.99)
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		b.ReportMetric(us(p50), "p50_us")
		b.ReportMetric(us(p99), "p99_us")
		b.ReportMetric(us(i50), "inproc_p50_us")
		b.ReportMetric(us(i99), "inproc_p99_us")
		b.ReportMetric(us(p50-i50), "overhead_p50_us")
		b.ReportMetric(us(p99-i99), "overhead_p99_us")
	})

	b.Run("parallel", func(b *testing.B) {
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.Run(b.Context(), "noop", &sdk.Run{Job: "bench"}, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
	})
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
