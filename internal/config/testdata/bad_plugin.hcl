plugin "webhook" {
  path   = "/opt/plugins/webhook"
  sha256 = "not-a-checksum"
}

plugin "webhook" {
  path = "/opt/plugins/other"
}

plugin "empty" {
  path           = ""
  max_concurrent = 0
}

plugin "nopath" {
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}
