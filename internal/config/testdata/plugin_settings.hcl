plugin "exec" {
  max_concurrent = 2
}

plugin "nosuch" {
  max_concurrent = 1
}
