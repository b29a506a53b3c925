job "no-handler" {
  schedule = "@daily"
}
