job "extract" {
  schedule = "@hourly"
  handler "exec" {
    command = ["extract"]
  }
}

job "load" {
  schedule = "@hourly"
  handler "exec" {
    command = ["load"]
  }
}

job "report" {
  handler "exec" {
    command = ["report"]
  }
  after "load" {}
  after "extract" {
    on = "success"
  }
}

job "cleanup" {
  schedule = "@daily"
  handler "exec" {
    command = ["cleanup"]
  }
  after "extract" {
    on = "failure"
  }
  after "report" {
    on = "always"
  }
}
