runner {
  namespce = "x"
}

job "typo" {
  schedul = "@daily"
  overlap  = "skip"
  handler "exec" {
    command = ["true"]
  }
  hander "exec" {
  }
}

cron_job "nope" {
}
