# Every scheduling attribute, as a job file uses them.
job "reports" {
  schedule   = ["30 2 * * *", "0 12 * * MON-FRI"]
  timezone   = "Europe/Berlin"
  dst_gap    = "skip"
  dst_repeat = "both"
  start_at   = "2026-03-01T00:00:00+01:00"
  end_at     = "2026-12-31T23:59:59Z"
  max_runs   = 100
  jitter     = "5m"
  handler "exec" {
    command = ["true"]
  }
}

# A thousand of these would not all start at :00: the minute is the job's own.
job "hourly-spread" {
  schedule = "H * * * *"
  handler "exec" {
    command = ["true"]
  }
}

# A report that must never run twice at once, and after an outage runs what it missed, one
# after another, for up to six hours back.
job "catch-all" {
  schedule       = "*/5 * * * *"
  overlap        = "buffer_all"
  catchup        = "all"
  catchup_window = "6h"
  handler "exec" {
    command = ["true"]
  }
}
