runner {
  lease = "30s"
}

runner {
  lease = "60s"
}
