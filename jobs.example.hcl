# An example job file: `go run ./cmd/runner run -config jobs.example.hcl` runs it on the
# embedded single-node store; add -redis redis://HOST:6379/0 to run it on a fleet, or
# -redis redis-sentinel://S1:26379,S2:26379,S3:26379/0?master=NAME for a Sentinel set, or
# -redis redis-cluster://H1:6379,H2:6379,H3:6379 for a Cluster (see docs/reliability.md).

runner {
  namespace = "example"
  lease     = "10s"
  # For a rediss:// URL (TLS), the PEM files, relative to this file:
  # redis_tls_ca = "certs/redis-ca.pem"
}

# Every five seconds, on whichever node wins the race for the occurrence.
job "heartbeat" {
  schedule = "*/5 * * * * *"
  timeout  = "30s"
  handler "exec" {
    command = ["sh", "-c", "echo \"heartbeat $CRONFLEET_OCCURRENCE_ID on $CRONFLEET_NODE (token $CRONFLEET_FENCING_TOKEN)\""]
  }
}

# A job that fails now and then and is retried with backoff: an occurrence due at :10, :30
# or :50 past a minute fails its first attempt; one due on the minute fails every attempt,
# and its alert runs.
job "flaky" {
  schedule = "@every 10s"
  retry {
    attempts = 3
    backoff  = "2s"
  }
  handler "exec" {
    command = ["sh", "-c", "echo attempt $CRONFLEET_ATTEMPT; s=$${CRONFLEET_SCHEDULED_AT##*:}; s=$${s%.*}; case $${s%?} in 0) exit 1;; 1|3|5) test $CRONFLEET_ATTEMPT -gt 1;; esac"]
  }
  # Once per occurrence that fails for good, is missed, or has not started 30s past its
  # due time; a real one would page someone (handler "http" { method = "POST", url = … }
  # sends the event as JSON).
  alert {
    on         = ["failure", "missed", "late"]
    late_after = "30s"
    handler "exec" {
      command = ["sh", "-c", "echo \"ALERT $CRONFLEET_ALERT_KIND: $CRONFLEET_ALERT_OCCURRENCE $CRONFLEET_ALERT_STATUS $CRONFLEET_ALERT_ERROR\""]
    }
  }
}

# Takes longer than its interval: the occurrence that falls due while it still runs waits
# and starts as soon as it ended (overlap), and after an outage only the newest missed
# occurrence runs (catchup).
job "sync" {
  schedule = "*/3 * * * * *"
  overlap  = "buffer_one"
  catchup  = "latest"
  # shards = 4               # split each occurrence into 4 parts run over the nodes, each
  #                          # told CRONFLEET_SHARD_INDEX (0..3) and CRONFLEET_SHARD_COUNT;
  #                          # or broadcast = true: once on every live node
  handler "exec" {
    command = ["sh", "-c", "echo syncing for $CRONFLEET_SCHEDULED_AT; sleep 4"]
  }
}

# Daily at 02:30 Berlin time: on the spring-forward day (no 02:30) it runs at 03:00,
# on the fall-back day (02:30 twice) it runs once.
job "nightly-report" {
  schedule = "30 2 * * *"
  timezone = "Europe/Berlin"
  timeout  = "20m"
  handler "exec" {
    command = ["sh", "-c", "echo building report for $CRONFLEET_SCHEDULED_AT"]
    env     = { REPORT_FORMAT = "pdf" }
  }
}
