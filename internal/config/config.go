package config

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// Defaults applied when a job file leaves a setting out.
const (
	// DefaultNamespace prefixes every Redis key of a fleet without a runner block.
	DefaultNamespace = "default"
	// DefaultLease is how long a claim on an occurrence stays valid without renewal.
	DefaultLease = 30 * time.Second
	// MinLease is the shortest lease accepted; shorter leases cannot be renewed reliably.
	MinLease = time.Second
	// DefaultConcurrency is a node's capacity when neither the runner block nor the
	// -concurrency flag sets it.
	DefaultConcurrency = 1024
	// MaxConcurrency bounds a node's capacity and a job's max_concurrent: each run holds a
	// goroutine and a lease, and a typo must not promise a million.
	MaxConcurrency = 1 << 16

	// DefaultAttempts is the total number of attempts of an occurrence, the first included.
	DefaultAttempts = 3
	// MaxAttempts bounds retry.attempts, so a typo cannot retry a job forever.
	MaxAttempts = 1000
	// DefaultBackoff is the delay before the second attempt of a failed occurrence.
	DefaultBackoff = 10 * time.Second
	// DefaultMaxBackoff caps the doubling retry delay.
	DefaultMaxBackoff = 10 * time.Minute
)

// Config is the job set of a fleet, decoded from one or more job files.
// Every node that loads the same files gets an equal Config.
type Config struct {
	// Runner holds the fleet-wide settings, defaulted when no runner block exists.
	Runner Runner
	// Jobs are sorted by name; names are unique.
	Jobs []*Job
	// Plugins are the plugin blocks, sorted by name; names are unique.
	Plugins []*Plugin
	// Calendars are the calendar blocks, sorted by name; names are unique. The jobs that
	// exclude one share it.
	Calendars []*cron.Calendar

	eval *hcl.EvalContext // functions for handler blocks, kept for DecodeHandlers
}

// Runner holds the settings of the runner block, shared by the whole fleet.
type Runner struct {
	// Namespace prefixes every Redis key, so several fleets can share one Redis.
	Namespace string
	// Lease is how long a claim stays valid without renewal; at least MinLease.
	Lease time.Duration
	// Concurrency is the capacity of each node: the most runs a node has going at once,
	// counting those claimed ahead of their start; zero when the block does not set it.
	// The runner's -concurrency flag, when given, wins over it.
	Concurrency int
	// RedisTLS names the PEM files of a TLS connection to Redis (rediss:// URLs): a CA, and
	// a client certificate with its key. Relative paths are relative to the job file, so a
	// fleet can ship them beside it; the runner's -redis-tls-* flags override them.
	RedisTLS RedisTLS
}

// MaxShards bounds a job's shards: each occurrence adds that many parts to the agenda at
// once, and one script call writes them.
const MaxShards = 256

// Fanned reports whether the job's occurrences run as parts (broadcast or shards).
func (j *Job) Fanned() bool { return j.Broadcast || j.Shards > 0 }

// RedisTLS names the PEM files of a TLS connection to Redis; empty means unset.
type RedisTLS struct {
	CA, Cert, Key string
}

// Job is one job block: when a job runs and which handler runs it.
type Job struct {
	// Name is the block label; it appears in Redis keys and occurrence ids.
	Name string
	// Schedule is the cron expression or descriptor as written; the expressions of a list,
	// joined with " | ".
	Schedule string
	// Schedules are the expressions as written: one, or the elements of a list, whose
	// union the job runs on.
	Schedules []string
	// Timezone is the IANA name of the zone the schedule is read in; "UTC" by default.
	Timezone string
	// Location is the loaded Timezone.
	Location *time.Location
	// DSTGap says what a wall time that a daylight-saving change skips does: runs at the
	// change (the default) or not at all.
	DSTGap cron.GapPolicy
	// DSTRepeat says which of the two instants of a wall time that a daylight-saving
	// change repeats run: the first (the default), the last, or both.
	DSTRepeat cron.RepeatPolicy
	// StartAt and EndAt bound the schedule: nothing before StartAt, nothing after EndAt;
	// zero for no bound.
	StartAt, EndAt time.Time
	// Sched is Schedules parsed for Location and the DST policies, bounded by StartAt and
	// EndAt: the job's due instants.
	Sched cron.Schedule
	// Exclude are the calendars of the job's exclude list, in its order: an occurrence whose
	// scheduled instant falls on one of their days does not run, and is recorded as skipped
	// (cron.Excluded; the job's zone reads a calendar that names none). Shared between the
	// jobs that exclude the same calendars, so never modified.
	Exclude []*cron.Calendar
	// Jitter delays each occurrence by an amount in [0, Jitter) drawn from its id, the same
	// on every node (cron.Jitter); zero for none.
	Jitter time.Duration
	// MaxRuns caps how many of its scheduled occurrences the job ever runs; zero for no
	// cap. Occurrences added by hand (runner trigger) do not count.
	MaxRuns int
	// Policy is what becomes of an occurrence that falls due while an earlier one of the job
	// has not finished (overlap), and of those that fell due while no node was claiming
	// (catch-up, within a window). The defaults: skip, latest, a day.
	Policy queue.Policy
	// Timeout bounds one attempt; zero means no timeout.
	Timeout time.Duration
	// MaxConcurrent caps the job's runs at once across the whole fleet, decided in Redis
	// by the claim script; zero for no cap. Only with overlap "allow", since every other
	// overlap policy runs the job one occurrence at a time.
	MaxConcurrent int
	// Priority orders the job's due occurrences against other jobs' when more are due than
	// the fleet can start at once: higher first, aging as they wait (queue.PriorityAging).
	// Parse sets queue.DefaultPriority for a job that names none.
	Priority int
	// Constraints limit the nodes that may run the job: every one must hold for a node's
	// labels (Allows). None: any node.
	Constraints []Constraint
	// Broadcast runs each occurrence once on every live node of the fleet, as parts of it
	// (cron.PartID), one pinned to each node; the occurrence ends when all its parts have.
	// Never with Shards.
	Broadcast bool
	// Shards, when not zero (from two to MaxShards), splits each occurrence into that many
	// parts, run wherever there is room, each told its index and the count; the occurrence
	// ends when all its parts have. Never with Broadcast.
	Shards int
	// Retry says how often and how late a failed occurrence is retried; each part of a
	// broadcast or sharded occurrence is retried on its own.
	Retry Retry
	// Handler names the plugin that runs the job and carries its settings.
	Handler Handler
	// Alert, if not nil, is the job's alert block: which events run which handler.
	Alert *Alert
	// After are the job's after blocks, in file order: the upstream jobs whose runs' ends
	// run it. A job with after blocks may have no schedule (Schedule is then empty and
	// Sched never due).
	After []After
	// DeclRange is the range of the job block header, for diagnostics about the job.
	DeclRange hcl.Range
	// Hash is the hex SHA-256 of the job's effective definition (everything but
	// the name and the source ranges); nodes compare it to detect drift.
	Hash string
}

// Retry is the retry policy of a job.
type Retry struct {
	// Attempts is the total number of attempts, the first included; at least 1.
	Attempts int
	// Backoff is the delay after the first failed attempt; it doubles per attempt.
	Backoff time.Duration
	// MaxBackoff caps the delay; it is never less than Backoff.
	MaxBackoff time.Duration
}

// Delay returns how long to wait before attempt+1 after attempt (counted from 1)
// failed: Backoff·2^(attempt−1), capped at MaxBackoff. An attempt below 1 is
// treated as 1.
func (r Retry) Delay(attempt int) time.Duration {
	d := r.Backoff
	for i := 1; i < attempt && d > 0 && d < r.MaxBackoff; i++ {
		if d > r.MaxBackoff/2 { // doubling would pass the cap (or overflow)
			d = r.MaxBackoff
			break
		}
		d *= 2
	}
	return max(0, min(d, r.MaxBackoff))
}

// Alert is the alert block of a job: a handler run once per event the fleet sees, as an
// occurrence of the job itself (see internal/queue).
type Alert struct {
	// On are the events alerted on, each once, in the order cron.AlertKinds lists them.
	On []cron.AlertKind
	// LateAfter is, with cron.AlertLate in On, how long past its not-before instant (its
	// due time plus the job's jitter) an occurrence that has not started is late.
	LateAfter time.Duration
	// Handler is the alert's handler block, checked against its plugin like the job's.
	Handler Handler
	// Retry is how an alert whose handler fails is retried: AlertRetry, whatever the job's
	// retry block says, since that is tuned for the job's work and not for a notification.
	Retry Retry
	// Timeout bounds one attempt of the alert's handler: AlertTimeout.
	Timeout time.Duration
	// DeclRange is the range of the alert block header.
	DeclRange hcl.Range
}

// Has reports whether a alerts on kind; a nil Alert alerts on nothing.
func (a *Alert) Has(kind cron.AlertKind) bool {
	return a != nil && slices.Contains(a.On, kind)
}

// AlertRetry is the retry policy of every alert: a failing alert handler is retried a
// little, so that a notification survives a brief outage of its receiver, and given up
// soon, since a late alert is worth little.
func AlertRetry() Retry {
	return Retry{Attempts: 3, Backoff: 5 * time.Second, MaxBackoff: time.Minute}
}

// AlertTimeout bounds one attempt of an alert handler: a notification that takes longer is
// stuck, whatever the job's own timeout allows its work.
const AlertTimeout = 5 * time.Minute

// Handler is the handler block of a job: a plugin name and its settings.
type Handler struct {
	// Plugin is the block label, the name of the plugin that runs the job.
	Plugin string
	// Settings are the block's arguments as one JSON object, for the plugin to
	// unmarshal into its own settings struct.
	Settings json.RawMessage
	// LabelRange is the range of the plugin name, for "unknown plugin" diagnostics.
	LabelRange hcl.Range
	// DefRange is the range of the handler block header.
	DefRange hcl.Range
	// Body is the block body, for decoding against a plugin's own schema. Its expressions
	// have been evaluated by the load and stand for their values; nil after Config.Compact.
	Body hcl.Body

	decoded bool // by DecodeHandlers: Settings follow the plugin's schema
}

// Compact drops the bodies of the handler blocks, which only DecodeHandlers and
// CheckHandlers read: a node keeps its jobs as they were decoded. Call it once both are
// done; neither may be called after it.
func (c *Config) Compact() {
	for _, j := range c.Jobs {
		j.Handler.Body = nil
		if j.Alert != nil {
			j.Alert.Handler.Body = nil
		}
	}
}

// Job returns the job named name, or nil.
func (c *Config) Job(name string) *Job {
	for _, j := range c.Jobs {
		if j.Name == name {
			return j
		}
	}
	return nil
}

// Priorities returns the priority of each of jobs whose priority is not
// queue.DefaultPriority: what the claim script and the backlog gauges are told (the others
// have the default). It is empty, not nil, when every job has the default.
func Priorities(jobs []*Job) map[string]int {
	m := map[string]int{}
	for _, j := range jobs {
		if j.Priority != queue.DefaultPriority {
			m[j.Name] = j.Priority
		}
	}
	return m
}
