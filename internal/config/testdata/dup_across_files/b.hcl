runner {
  namespace = "two"
}

job "backup" {
  schedule = "@hourly"
  handler "exec" {
    command = ["backup", "--fast"]
  }
}
