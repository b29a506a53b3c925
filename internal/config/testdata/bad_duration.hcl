job "slow" {
  schedule = "@daily"
  timeout  = "10 minutes"
  retry {
    backoff     = "10"
    max_backoff = "1 hour"
  }
  handler "exec" {
    command = ["true"]
  }
}
