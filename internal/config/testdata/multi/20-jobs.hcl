job "report" {
  schedule = "15 9 * * 1-5"
  timezone = "America/New_York"
  handler "exec" {
    command = ["make", "report"]
  }
}
