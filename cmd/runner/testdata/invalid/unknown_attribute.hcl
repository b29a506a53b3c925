job "a" {
  schedule = "@daily"
  retries  = 3
  handler "exec" {
    command = ["true"]
  }
}
