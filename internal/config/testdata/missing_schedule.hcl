job "no-schedule" {
  timezone = "UTC"
  handler "exec" {
    command = ["true"]
  }
}
