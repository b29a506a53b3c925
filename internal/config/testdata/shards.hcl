job "everywhere" {
  schedule  = "@hourly"
  broadcast = true
  handler "exec" {
    command = ["true"]
  }
}

job "split" {
  schedule       = "@hourly"
  shards         = 5
  overlap        = "allow"
  max_concurrent = 2
  handler "exec" {
    command = ["true"]
  }
}

job "not-split" {
  schedule  = "@hourly"
  broadcast = false
  handler "exec" {
    command = ["true"]
  }
}
