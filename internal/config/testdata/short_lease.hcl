runner {
  lease = "500ms"
}
