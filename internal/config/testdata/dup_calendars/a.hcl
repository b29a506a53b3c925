calendar "holidays" {
  dates = ["2026-12-25"]
}

job "payroll" {
  schedule = "0 9 * * *"
  exclude  = ["holidays"]
  handler "exec" {
    command = ["true"]
  }
}
