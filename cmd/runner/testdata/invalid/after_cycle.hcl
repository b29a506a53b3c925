job "extract" {
  schedule = "@hourly"
  handler "exec" {
    command = ["true"]
  }
  after "report" {}
}

job "load" {
  handler "exec" {
    command = ["true"]
  }
  after "extract" {}
}

job "report" {
  handler "exec" {
    command = ["true"]
  }
  after "load" {
    on = "always"
  }
}
