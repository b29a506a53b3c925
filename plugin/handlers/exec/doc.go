// Package exec is the built-in "exec" handler: it runs a command per
// occurrence.
//
// Settings (the job's handler block):
//
//	command = ["pg_dump", "-Fc", "app"]   # argv, run without a shell
//	shell   = "pg_dump -Fc app | gzip"    # or: a script run with /bin/sh -c
//	env     = { PGHOST = "db.internal" }  # extra environment, optional
//	dir     = "/srv/app"                  # working directory, optional
//	user    = "backup"                    # run as this user (name or uid), optional
//
// Exactly one of command and shell is required. user needs the plugin (so
// the runner) to run as root; otherwise the run fails rather than run the
// command as the wrong user. The command then runs with that user's uid,
// primary gid and supplementary groups; its environment is not changed (no
// HOME or USER). Handler.Schema declares these attributes. Invalid settings
// fail the run with an sdk.Permanent error: retrying cannot fix them.
//
// Environment: the command sees only PATH (the plugin's), the job's env and
// the occurrence as CRONFLEET_JOB, CRONFLEET_SCHEDULED_AT (RFC 3339, UTC,
// milliseconds), CRONFLEET_ATTEMPT, CRONFLEET_FENCING_TOKEN,
// CRONFLEET_OCCURRENCE_ID and CRONFLEET_NODE, which are set last so a job's
// env cannot fake them. Nothing else of the runner's environment (Redis
// credentials, cloud tokens) reaches a job unless the job file says so.
//
// Alerts: run as a job's alert handler (sdk.Run.Alert set), the command also
// sees the event as CRONFLEET_ALERT_KIND ("failure", "missed" or "late"),
// CRONFLEET_ALERT_JOB, CRONFLEET_ALERT_OCCURRENCE (the id of the occurrence
// the event is about; CRONFLEET_OCCURRENCE_ID is the alert's own),
// CRONFLEET_ALERT_SCHEDULED_AT, CRONFLEET_ALERT_STATUS and
// CRONFLEET_ALERT_ERROR (empty for a late one).
//
// Dependencies: run because upstream occurrences ended (the job's after
// blocks, sdk.Run.Upstream set), the command also sees their ids as
// CRONFLEET_UPSTREAM_OCCURRENCE, comma-separated for a fan-in.
//
// Parts: run as a part of a broadcast or sharded occurrence (sdk.Run.ShardCount
// above 0), the command also sees CRONFLEET_SHARD_INDEX (from 0) and
// CRONFLEET_SHARD_COUNT; CRONFLEET_OCCURRENCE_ID is the part's own id. Both are
// unset for a run that is not a part, which does all the work: a script that
// splits its work may read an unset index as 0 of 1.
//
// Processes: the command runs in its own process group. When the run's ctx
// is cancelled (timeout, lost lease, shutdown, or the lease's fence passing
// while the runner is frozen or cut off, see plugin/sdk) the whole group gets
// SIGTERM and, after a short grace that fits within Run.StopWithin, SIGKILL; when the command exits on its own, any
// process it left in its group is killed too. A job thus never leaves
// background processes behind, however it was stopped. The command also
// gets SIGKILL if the plugin process dies (Pdeathsig), although its own
// children then survive unless they are killed with their group; the
// runner therefore stops plugins with SIGTERM, never SIGKILL first, so this
// handler can clean up.
//
// Output: stdout and stderr are merged, streamed to the runner line by line
// and the last 64 KiB are kept as the result's Output. A non-zero exit is
// an error naming the exit code; Metadata["exit_code"] holds it ("-1" when
// the command was killed by a signal).
package exec
