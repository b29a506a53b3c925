job "backup" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
}

job "backup" {
  schedule = "@hourly"
  handler "exec" {
    command = ["true"]
  }
}
