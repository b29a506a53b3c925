job "a" {
  schedule = "@daily"
  timezone = "Europe/Atlantis"
  handler "exec" {
    command = ["true"]
  }
}
