job "no-url" {
  schedule = "@daily"
  handler "http" {
    method = "POST"
  }
}

job "bad-url" {
  schedule = "@daily"
  handler "http" {
    url     = "ftp://example.invalid/hook"
    timeout = "soon"
  }
}
