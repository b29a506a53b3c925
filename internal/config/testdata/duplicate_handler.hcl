job "two-handlers" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
  handler "http" {
    url = "https://example.com/hook"
  }
}
