package config_test

import (
	"fmt"
	"os"
	"time"

	"github.com/cronfleet/cronfleet/internal/config"
)

func ExampleParse() {
	src := []byte(`
job "db-backup" {
  schedule = "0 30 2 * * *"
  timezone = "Europe/Berlin"
  timeout  = "20 minutes"
  handler "exec" {
    command = ["pg_dump", "app"]
  }
}
`)
	cfg, sources, diags := config.Parse("jobs.hcl", src)
	if diags.HasErrors() {
		// Render once, at the top, with the source line each problem points at.
		_ = sources.WriteDiagnostics(os.Stdout, diags)
		return
	}
	fmt.Println(cfg.Jobs[0].Name)
	// Output:
	// jobs.hcl:5:14: error: Invalid duration
	// Error: Invalid duration
	//
	//   on jobs.hcl line 5, in job "db-backup":
	//    5:   timeout  = "20 minutes"
	//
	// The value "20 minutes" of "timeout" is not a duration; use a number with a unit, such as "90s",
	// "20m" or "1h30m".
	//
}

func ExampleRetry_Delay() {
	r := config.Retry{Attempts: 5, Backoff: config.DefaultBackoff, MaxBackoff: 30 * time.Second}
	for attempt := 1; attempt < r.Attempts; attempt++ {
		fmt.Printf("after failed attempt %d, wait %s\n", attempt, r.Delay(attempt))
	}
	// Output:
	// after failed attempt 1, wait 10s
	// after failed attempt 2, wait 20s
	// after failed attempt 3, wait 30s
	// after failed attempt 4, wait 30s
}
