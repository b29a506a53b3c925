job "too-few-fields" {
  schedule = "30 2 *"
  handler "exec" {
    command = ["true"]
  }
}

job "out-of-range" {
  schedule = "0 61 * * *"
  handler "exec" {
    command = ["true"]
  }
}

job "bad-descriptor" {
  schedule = "@fortnightly"
  handler "exec" {
    command = ["true"]
  }
}

job "zone-in-schedule" {
  schedule = "CRON_TZ=Asia/Tokyo 0 9 * * *"
  handler "exec" {
    command = ["true"]
  }
}

job "never" {
  schedule = "0 0 30 2 *"
  handler "exec" {
    command = ["true"]
  }
}
