job "a" {
  schedule = "@daily"
  handler "exec" {
    command = "true"
  }
}
