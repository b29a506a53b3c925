job "backup" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
  alert {
    on         = ["late", "failure", "missed"]
    late_after = "2m"
    handler "http" {
      url = "https://example.com/hook"
    }
  }
}

job "report" {
  schedule = "@hourly"
  handler "exec" {
    command = ["true"]
  }
  alert {
    on = ["failure"]
    handler "exec" {
      command = ["notify", "${upper("report")}"]
    }
  }
}
