runner {
  namespace = "multi"
}
