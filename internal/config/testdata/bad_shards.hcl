job "both" {
  schedule  = "@hourly"
  broadcast = true
  shards    = 4
  handler "exec" {
    command = ["true"]
  }
}

job "range" {
  schedule = "@hourly"
  shards   = 1
  handler "exec" {
    command = ["true"]
  }
}

job "too-many" {
  schedule = "@hourly"
  shards   = 100000
  handler "exec" {
    command = ["true"]
  }
}

job "type" {
  schedule  = "@hourly"
  broadcast = "yes"
  handler "exec" {
    command = ["true"]
  }
}

job "cancel" {
  schedule  = "@hourly"
  overlap   = "cancel_other"
  broadcast = true
  handler "exec" {
    command = ["true"]
  }
}
