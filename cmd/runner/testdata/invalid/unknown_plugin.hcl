job "a" {
  schedule = "@daily"
  handler "kafka" {
    topic = "x"
  }
}
