job "unclosed" {
  schedule = "@daily"
  handler "exec" {
    command = ["true",
  }
