job "huge" {
  schedule = "@daily"
  handler "exec" {
    label = "${1e9999999}"
    tiny  = -1e-999999
  }
}
