job "unknown-event" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
  alert {
    on = ["failure", "failed", "failure", 7]
    handler "exec" {
      command = ["true"]
    }
  }
}

job "late-without-after" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
  alert {
    on = ["late"]
    handler "exec" {
      command = ["true"]
    }
  }
}

job "after-without-late" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
  alert {
    on         = ["missed"]
    late_after = "1m"
    handler "exec" {
      command = ["true"]
    }
  }
}

job "zero-late" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
  alert {
    on         = ["late"]
    late_after = "0s"
    handler "exec" {
      command = ["true"]
    }
  }
}

job "no-events-no-handler" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
  alert {
    on = []
  }
  alert {
    on = ["failure"]
    handler "exec" {
      command = ["true"]
    }
  }
}

job "not-a-list" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
  alert {
    on = "failure"
    tries = 3
    handler "exec" {
      command = ["true"]
    }
    handler "http" {
      url = "https://example.com/hook"
    }
  }
}

job "missing-on" {
  schedule = "@daily"
  handler "exec" {
    command = ["true"]
  }
  alert {
    handler "exec" {
      command = ["true"]
    }
  }
}
