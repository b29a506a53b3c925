plugin "webhook" {
  path           = "/opt/plugins/webhook"
  sha256         = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
  max_concurrent = 4
}

job "notify" {
  schedule = "@hourly"
  handler "webhook" {
    url = "https://example.invalid/hook"
  }
}
