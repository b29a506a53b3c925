// Package config turns HCL job files into the job set a runner executes.
//
// It owns the job file schema (the runner block, calendar blocks, job blocks and their
// retry, handler, alert and after blocks), the defaults, every validation that can be done without Redis
// or a clock, and the per-job definition hash that lets nodes detect drift. It
// does not know which plugins exist: the runner asks [Config.CheckPlugins] once
// it has discovered them.
//
// Decoding is schema first, as in Nomad's jobspec2: each body is checked against
// an [hcl.BodySchema] with Body.Content, so HCL itself reports unknown arguments
// and blocks (with its "Did you mean" suggestions), missing labels and duplicate
// arguments. Semantic errors (a bad cron expression, an unknown zone, a duplicate
// job) are then reported against the exact range of the offending value, label
// or block header.
//
// Problems stay [hcl.Diagnostics] all the way up and are never flattened into an
// error string midway: a diagnostic keeps its Subject range, so it can be
// rendered once, with the source line and a caret, by [Sources.WriteDiagnostics],
// or turned into structured output by a caller. A load collects every problem it
// can find in every file instead of stopping at the first, so one run of the
// runner's validation shows everything that needs fixing.
//
// Arguments are typed strictly: a duration is a string such as "90s", never the
// number 90, and HCL's usual conversions (true or 7 to a string) are refused, so
// a type mistake is reported as one rather than as a puzzling follow-up error.
// Handler settings are the exception: their types come from the plugin's schema
// (see Config.DecodeHandlers), and their expressions may use templates, lists,
// maps and a fixed set of functions such as env() and jsonencode() (no
// variables); the values are handed to the plugin as JSON.
//
// A job's alert block names the events it alerts on and a handler block of its
// own, decoded and checked against its plugin exactly as the job's handler is (one
// list of handler blocks, Config.handlers, feeds DecodeHandlers, CheckHandlers and
// CheckPlugins). Its retry policy and timeout are fixed (AlertRetry, AlertTimeout):
// the job's retry block is tuned for the job's work, not for a notification.
//
// A job's after blocks name the jobs whose runs' ends run it; a job with after blocks needs
// no schedule. What needs the whole job set (an upstream that exists, no dependency cycle)
// is checked once every file is merged; a cycle is reported at the after block that closes
// it, so each cycle is named once.
//
// Calendar blocks name days a job may exclude (calendar.go). They are top-level blocks,
// unique across all files, because one calendar serves many jobs; a job's exclude list is
// resolved once every block is decoded, since blocks decode independently and in parallel.
// A job holds pointers to the shared calendars (jobs with the same list share the list), and
// its definition hash includes each calendar's name and digest, so changing a holiday is a
// change of exactly the jobs that exclude it, and jobs that exclude none keep their hash.
//
// A load either succeeds completely or returns no Config at all, so a runner
// never starts, or reloads into, half of a job set.
//
// A job set may hold very many jobs, so a load keeps what the jobs need and
// little else. A large file is parsed in pieces that end with a top-level block, on every
// CPU, and each piece's blocks are decoded as soon as it is parsed; only the decoded jobs
// outlive a piece's syntax tree, which is several times the size of its source (see
// pieces.go: a file a piece of which does not parse cleanly is parsed again whole, so its
// diagnostics are exactly what they always were). Jobs share one *time.Location per zone
// and one parsed schedule per spec and zone (unless the spec has H forms, which depend on
// the job's name). Each handler attribute's expression is replaced by the value it
// evaluated to, which DecodeHandlers decodes against the plugin's schema, and
// [Config.Compact] drops the handler bodies once the runner has checked them.
//
// Bad input is an error, never a crash: besides HCL's own checks, number literals
// beyond the float64 range are rejected before anything is evaluated, because
// HCL would otherwise happily spend seconds formatting 1e9999999 as a string.
package config
