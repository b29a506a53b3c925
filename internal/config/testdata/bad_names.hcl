runner {
  namespace = "Team A"
}

job "-leading-dash" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
}

job "has space" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
}

job "" {
  schedule = "@daily"
  handler "../bin/sh" {
  }
}
