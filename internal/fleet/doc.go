// Package fleet reads and steers a running fleet: its nodes, each job's next fires, last
// result and pause, a job's history, and the actions every node follows (pause, resume,
// trigger, backfill), each recorded in the fleet's audit stream.
//
// It is the one implementation behind the command line (runner status, history, next,
// pause, resume, trigger, backfill) and the HTTP API and dashboard (internal/api): what the
// two show cannot drift apart, and an action taken in one appears in the other's audit
// log. The truth is in Redis, so any node, or a command on an operator's laptop, answers
// for the whole fleet.
//
// Errors a caller caused (no such job, a range in the future) are *InputError; the HTTP
// API answers them with a 4xx and the command line with its usage exit code. Every other
// error is Redis' and is wrapped with the operation.
package fleet
