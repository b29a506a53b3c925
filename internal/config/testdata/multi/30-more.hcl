job "cleanup" {
  schedule = "@hourly"
  handler "exec" {
    command = ["rm", "-rf", "/tmp/cache"]
  }
}
