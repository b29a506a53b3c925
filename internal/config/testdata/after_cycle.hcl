job "a" {
  schedule = "@hourly"
  handler "exec" {
    command = ["true"]
  }
  after "c" {}
}

job "b" {
  handler "exec" {
    command = ["true"]
  }
  after "a" {
    on = "always"
  }
}

job "c" {
  handler "exec" {
    command = ["true"]
  }
  after "b" {}
}

job "x" {
  handler "exec" {
    command = ["true"]
  }
  after "y" {}
}

job "y" {
  handler "exec" {
    command = ["true"]
  }
  after "x" {
    on = "failure"
  }
}
