job "a" {
  schedule = "@daily"
  handler "exec" {
    dir = "/tmp"
  }
}
