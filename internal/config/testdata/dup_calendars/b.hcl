calendar "holidays" {
  dates = ["2026-12-26"]
}
