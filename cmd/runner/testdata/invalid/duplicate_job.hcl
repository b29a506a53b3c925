job "a" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
}

job "a" {
  schedule = "@hourly"
  handler "exec" {
    command = ["true"]
  }
}
