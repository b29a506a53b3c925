job "negative" {
  schedule = "@daily"
  timeout  = "-5s"
  retry {
    attempts = -1
    backoff  = "-1s"
  }
  handler "exec" {
    command = ["true"]
  }
}

job "fractional" {
  schedule = "@daily"
  retry {
    attempts = 2.5
  }
  handler "exec" {
    command = ["true"]
  }
}

job "too-many" {
  schedule = "@daily"
  retry {
    attempts = 1e6
  }
  handler "exec" {
    command = ["true"]
  }
}
