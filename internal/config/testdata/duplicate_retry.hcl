job "two-retries" {
  schedule = "@daily"
  retry {
    attempts = 2
  }
  retry {
    attempts = 4
  }
  handler "exec" {
    command = ["true"]
  }
}
