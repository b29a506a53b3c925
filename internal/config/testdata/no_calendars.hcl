job "payroll" {
  schedule = "0 9 * * *"
  exclude  = ["holidays"]
  handler "exec" {
    command = ["true"]
  }
}
