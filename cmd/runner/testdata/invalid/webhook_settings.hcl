job "a" {
  schedule = "@daily"
  handler "webhook" {
    url = ["https://example.invalid/"]
  }
}

job "b" {
  schedule = "@daily"
  handler "webhook" {
  }
}

job "c" {
  schedule = "@daily"
  handler "webhook" {
    url  = "https://example.invalid/"
    urls = "x"
  }
}

job "d" {
  schedule = "@daily"
  handler "webhook" {
    url = "hooks.example/cron"
  }
}
