job "extract" {
  schedule = "@hourly"
  handler "exec" {
    command = ["true"]
  }
}

job "itself" {
  handler "exec" {
    command = ["true"]
  }
  after "itself" {}
}

job "typo" {
  handler "exec" {
    command = ["true"]
  }
  after "extrct" {}
  after "nowhere" {}
}

job "twice" {
  handler "exec" {
    command = ["true"]
  }
  after "extract" {}
  after "extract" {
    on = "failure"
  }
}

job "bad-on" {
  handler "exec" {
    command = ["true"]
  }
  after "extract" {
    on    = "done"
    delay = "1m"
  }
  after "twice" {
    on = ["success"]
  }
}
