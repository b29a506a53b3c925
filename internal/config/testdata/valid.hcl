# A complete job file: every setting, and a job relying on the defaults.
runner {
  namespace = "team-a_prod"
  lease     = "45s"
}

job "db-backup" {
  schedule = "0 30 2 * * *"
  timezone = "Europe/Berlin"
  timeout  = "20m"
  retry {
    attempts    = 5
    backoff     = "30s"
    max_backoff = "1h"
  }
  handler "exec" {
    command = ["pg_dump", "-Fc", "-f", "/backups/app.dump", "app"]
    env     = { PGHOST = "db.internal", PGPORT = 5432 }
    shell   = false
    nice    = 1.5
    note    = "started at ${"2"}:30 Berlin time"
  }
}

job "Heartbeat.v2" {
  schedule = "@every 90s"
  handler "http" {}
}

job "a_first" {
  schedule = "@daily"
  timeout  = "0"
  handler "exec" {
    command = ["true"]
  }
}
