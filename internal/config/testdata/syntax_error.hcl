job "broken" {
  schedule "@daily"
  handler "exec" {
    command = ["true"]
  }
}
