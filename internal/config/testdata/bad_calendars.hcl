calendar "holidays" {
  dates  = ["2026-12-25", "2026-12-5", "2026-02-30", 20261225]
  ranges = [
    { from = "2026-12-26", to = "2026-12-24" },
    { from = "2026-12-24" },
    { from = "2026-12-24", to = "2026-12-26", form = "2026-12-20" },
    "2026-12-24..2026-12-26",
  ]
}

calendar "empty" {
  dates = []
}

calendar "zoned" {
  timezone = "Mars/Olympus"
  dates    = ["2026-12-25"]
  weekdays = ["SAT"]
}

calendar "holidays" {
  dates = ["2027-01-01"]
}

calendar "bad name!" {
  dates = ["2027-01-01"]
}

calendar "not-a-list" {
  dates = "2026-12-25"
}

job "payroll" {
  schedule = "0 9 * * *"
  exclude  = ["holidays", "holiday", "zoned", "holidays", "vacation"]
  handler "exec" {
    command = ["true"]
  }
}

job "typo" {
  schedule = "0 9 * * *"
  exclude  = "holidays"
  handler "exec" {
    command = ["true"]
  }
}
