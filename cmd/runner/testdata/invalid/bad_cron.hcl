job "a" {
  schedule = "0 0 30 2 *"
  handler "exec" {
    command = ["true"]
  }
}
