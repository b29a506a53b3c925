job "a" {
  schedule = "@daily"
  handler "exec" {
    comand = ["true"]
  }
}
