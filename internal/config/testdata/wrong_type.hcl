runner {
  namespace = 7
  lease     = 30
}

job "types" {
  schedule = 30
  timezone = null
  timeout  = true
  retry {
    attempts = "3"
  }
  handler "exec" {
    command = ["true"]
  }
}
