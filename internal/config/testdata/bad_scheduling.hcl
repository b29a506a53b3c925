job "policies" {
  schedule   = "30 2 * * *"
  dst_gap    = "jump"
  dst_repeat = "twice"
  handler "exec" {
    command = ["true"]
  }
}

job "bounds" {
  schedule = "@daily"
  start_at = "2026-13-01"
  end_at   = "2026-01-01T00:00:00Z"
  max_runs = 0
  jitter   = "-1m"
  handler "exec" {
    command = ["true"]
  }
}

job "backwards" {
  schedule = "@daily"
  start_at = "2027-01-01T00:00:00Z"
  end_at   = "2026-01-01T00:00:00Z"
  handler "exec" {
    command = ["true"]
  }
}

job "lists" {
  schedule = ["@daily", "61 * * * *", "@daily", 5]
  handler "exec" {
    command = ["true"]
  }
}

job "empty" {
  schedule = []
  handler "exec" {
    command = ["true"]
  }
}

job "overlaps" {
  schedule       = "@hourly"
  overlap        = "queue"
  catchup        = "some"
  catchup_window = "10ms"
  handler "exec" {
    command = ["true"]
  }
}
