# Calendars of days off, and jobs that exclude them.
calendar "holidays" {
  dates  = ["2026-12-25", "2027-01-01"]
  ranges = [
    { from = "2026-12-24", to = "2026-12-26" },
    { "from" = "2026-12-31", "to" = "2026-12-31" },
  ]
}

# Read in UTC, whatever the zone of the job that excludes it.
calendar "freeze" {
  timezone = "UTC"
  ranges   = [{ from = "2026-11-27", to = "2026-11-30" }]
}

job "payroll" {
  schedule = "0 9 * * *"
  timezone = "Europe/Berlin"
  exclude  = ["holidays", "freeze"]
  handler "exec" {
    command = ["true"]
  }
}

# Two jobs with the same list share it.
job "report" {
  schedule = "0 18 * * *"
  exclude  = ["holidays", "freeze"]
  handler "exec" {
    command = ["true"]
  }
}

job "cleanup" {
  schedule = "@daily"
  exclude  = []
  handler "exec" {
    command = ["true"]
  }
}
