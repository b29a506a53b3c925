// Package api is a node's HTTP face: health and readiness probes, Prometheus metrics, a
// versioned JSON API and the dashboard, all answering for the whole fleet, because the
// fleet's truth is in Redis and internal/fleet reads it the same way for every node and for
// the command line.
//
// # Security
//
// A node serves HTTP only when asked (runner run -http ADDR), on loopback unless ADDR names
// another host. On loopback without tokens every client may read and act (like redis-cli
// on the same host). Anywhere else the node refuses to start without bearer tokens (a file,
// or the environment; never the job files, which every node and repository holds), and
// without TLS unless the operator opts out in so many words (-http-insecure). A token has
// one of two roles: read, or operate (read, and trigger, pause, resume, backfill). Tokens
// are compared in constant time, through their SHA-256 so that their lengths do not show.
// Browsers send the token as a cookie set by the login page (HttpOnly, SameSite=Strict,
// Secure under TLS); every state-changing request is also checked against cross-origin
// forgery (net/http's CrossOriginProtection), which a loopback dashboard without tokens
// needs most: any web page could otherwise post to it.
//
// # Errors
//
// The JSON API answers every error as {"error": "…"}: a mistake in the request with 400,
// 404, 405 or 413 saying what was wrong, a missing or wrong token with 401, a role that may
// not act with 403, and Redis unreachable with 503; never a 500 for bad input.
//
// # Pages
//
// The dashboard is server-rendered HTML (html/template, assets embedded in the binary), so
// it reads without JavaScript; a small script refreshes the live parts in place and streams
// a running handler's output, and without it the pages refresh themselves.
package api
