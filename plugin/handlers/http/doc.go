// Package httphandler is the built-in "http" handler: it sends one HTTP
// request per occurrence and fails the run on an unexpected status.
//
// Settings (the job's handler block; every attribute is flat so that the
// block is a plain name/type schema):
//
//	method        = "POST"                        # default "GET"
//	url           = "https://api.internal/rotate" # required; http or https
//	headers       = { Authorization = "Bearer s3cr3t" }
//	body          = "{\"dry_run\": false}"
//	expect_status = [200, 202]                    # default: any 2xx
//	timeout       = "30s"                         # default 30s; the occurrence's ctx bounds it too
//
//	tls_ca_file              = "/etc/cronfleet/internal-ca.pem" # trust only these CAs
//	tls_cert_file            = "/etc/cronfleet/client.pem"      # client certificate (with tls_key_file)
//	tls_key_file             = "/etc/cronfleet/client-key.pem"
//	tls_insecure_skip_verify = false
//
// Why the occurrence travels in headers: a retried or taken-over attempt
// sends the same request again, so the receiving service needs a key to
// deduplicate on. Every request carries Idempotency-Key (the occurrence id,
// stable across attempts and nodes), X-Cronfleet-Job, X-Cronfleet-Attempt,
// X-Cronfleet-Fencing-Token (strictly growing per claim, so a service can
// refuse a stale holder) and X-Cronfleet-Scheduled-At. The handler owns
// these headers: a job's headers may not set them, which is a settings
// error rather than a silent override.
//
// Alerts: run as a job's alert handler (sdk.Run.Alert set) with no body in
// its settings, the request's body is the event as JSON, {"kind", "job",
// "occurrence", "scheduled_at", "status", "error"} (status and error left out
// when empty), with Content-Type application/json unless the headers set one.
// The method is still the settings': set method = "POST" for most receivers.
//
// Result: Metadata["status_code"] holds the response status;
// Message is the status line; Output is the first OutputLimit bytes of the
// response body (Metadata["body_truncated"] = "true" when there was more),
// made valid UTF-8 because results travel as protobuf strings. The same
// excerpt is streamed as output lines. A status outside expect_status is an
// error; so is a transport failure or the timeout, and the runner retries
// them per the job's policy. Invalid settings fail before any request is
// sent and are marked sdk.Permanent: retrying cannot fix them.
//
// Connections: each run builds its own transport (its TLS settings are the
// job's) and closes its idle connections when it returns, so a plugin
// process shared by many jobs keeps no sockets between runs. Proxies come
// from the plugin's environment (HTTPS_PROXY, NO_PROXY), which the runner
// passes only when told to.
package httphandler
