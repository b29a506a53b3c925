runner {
  namespace = 7
  lease     = 30
}

job "types" {
  schedule = ["@daily"]
  timezone = null
  timeout  = true
  retry {
    attempts = "3"
  }
  handler "exec" {
    command = ["true"]
  }
}
