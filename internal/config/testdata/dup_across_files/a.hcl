runner {
  namespace = "one"
}

job "backup" {
  schedule = "@daily"
  handler "exec" {
    command = ["backup"]
  }
}
