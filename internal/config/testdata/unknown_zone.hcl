job "mars" {
  schedule = "@daily"
  timezone = "Mars/Olympus_Mons"
  handler "exec" {
    command = ["true"]
  }
}

job "local" {
  schedule = "0 9 * * *"
  timezone = "Local"
  handler "exec" {
    command = ["true"]
  }
}
