job "settings" {
  schedule = "@daily"
  handler "exec" {
    command = [var.cmd]
    env     = upper("x")
    ratio   = 1 / 0
    nested {
      a = 1
    }
  }
}
