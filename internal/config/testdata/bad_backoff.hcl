job "cap-below-base" {
  schedule = "@daily"
  retry {
    backoff     = "5m"
    max_backoff = "1m"
  }
  handler "exec" {
    command = ["true"]
  }
}

job "base-above-default-cap" {
  schedule = "@daily"
  retry {
    backoff = "1h"
  }
  handler "exec" {
    command = ["true"]
  }
}
