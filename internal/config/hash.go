package config

import (
	"crypto/sha256"
	"time"

	"encoding/hex"
	"encoding/json"
	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/queue"
	"slices"
	"strings"
)

// hashJob returns the hex SHA-256 of the effective definition of j: what
// decides when and how it runs, after defaults. Nodes compare hashes to detect
// drift, so the encoding must stay stable across releases: fields are encoded
// in a fixed order, durations in nanoseconds, settings as their canonical JSON text
// (sorted keys), and the leading version changes if the meaning ever does.
// The name is the key hashes are compared under, and ranges are not
// definition, so neither is hashed.
func hashJob(j *Job) string {
	def := struct {
		Version    string `json:"v"`
		Schedule   string `json:"schedule"`
		Timezone   string `json:"timezone"`
		Timeout    int64  `json:"timeout_ns"`
		Attempts   int    `json:"attempts"`
		Backoff    int64  `json:"backoff_ns"`
		MaxBackoff int64  `json:"max_backoff_ns"`
		Plugin     string `json:"plugin"`
		Settings   string `json:"settings"`
		// Added later: omitted at their defaults, so that the hash of a job that does not
		// use them stays what it was.
		Schedules []string  `json:"schedules,omitempty"`
		DSTGap    string    `json:"dst_gap,omitempty"`
		DSTRepeat string    `json:"dst_repeat,omitempty"`
		StartAt   string    `json:"start_at,omitempty"`
		EndAt     string    `json:"end_at,omitempty"`
		MaxRuns   int       `json:"max_runs,omitempty"`
		Jitter    int64     `json:"jitter_ns,omitempty"`
		Overlap   string    `json:"overlap,omitempty"`
		Catchup   string    `json:"catchup,omitempty"`
		Window    int64     `json:"catchup_window_ns,omitempty"`
		Alert     *alertDef `json:"alert,omitempty"`
		After     []string  `json:"after,omitempty"`
		// A changed calendar changes the jobs that exclude it: their runs differ.
		Exclude []excludeDef `json:"exclude,omitempty"`
		MaxConc int          `json:"max_concurrent,omitempty"`
		// Priority is kept only when not the default; a pointer, since 0 is a priority.
		Priority *int `json:"priority,omitempty"`
		// Sorted: all of a job's constraints hold at once, in any order.
		Constraints []string `json:"constraints,omitempty"`
		// Broadcast and Shards change where and how often the job's handler runs.
		Broadcast bool `json:"broadcast,omitempty"`
		Shards    int  `json:"shards,omitempty"`
	}{
		Version:    "cronfleet.job.v1",
		Schedule:   j.Schedule,
		Timezone:   j.Timezone,
		Timeout:    int64(j.Timeout),
		Attempts:   j.Retry.Attempts,
		Backoff:    int64(j.Retry.Backoff),
		MaxBackoff: int64(j.Retry.MaxBackoff),
		Plugin:     j.Handler.Plugin,
		Settings:   string(j.Handler.Settings),
		MaxRuns:    j.MaxRuns,
		Jitter:     int64(j.Jitter),
		MaxConc:    j.MaxConcurrent,
		Broadcast:  j.Broadcast,
		Shards:     j.Shards,
	}
	if len(j.Schedules) > 1 {
		def.Schedules = j.Schedules
	}
	if j.Priority != queue.DefaultPriority {
		p := j.Priority
		def.Priority = &p
	}
	if j.DSTGap != cron.GapShift {
		def.DSTGap = j.DSTGap.String()
	}
	if j.DSTRepeat != cron.RepeatOnceFirst {
		def.DSTRepeat = j.DSTRepeat.String()
	}
	if d := queue.DefaultPolicy(); j.Policy != d {
		def.Overlap, def.Catchup, def.Window = string(j.Policy.Overlap), string(j.Policy.Catchup), int64(j.Policy.CatchupWindow)
	}
	if a := j.Alert; a != nil {
		def.Alert = &alertDef{LateAfter: int64(a.LateAfter), Plugin: a.Handler.Plugin, Settings: string(a.Handler.Settings)}
		for _, k := range a.On {
			def.Alert.On = append(def.Alert.On, string(k))
		}
	}
	for _, a := range j.After {
		def.After = append(def.After, a.Job+" "+string(a.On))
	}
	// Sorted: the order of a job's after blocks means nothing.
	slices.Sort(def.After)
	for _, c := range j.Constraints {
		def.Constraints = append(def.Constraints, c.String())
	}
	slices.Sort(def.Constraints)
	for _, c := range j.Exclude {
		def.Exclude = append(def.Exclude, excludeDef{Calendar: c.Name(), Digest: c.Digest()})
	}
	if !j.StartAt.IsZero() {
		def.StartAt = j.StartAt.UTC().Format(time.RFC3339Nano)
	}
	if !j.EndAt.IsZero() {
		def.EndAt = j.EndAt.UTC().Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(def) // strings and integers always encode
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// excludeDef is one calendar a job excludes, as its hash sees it: the name, which its
// skipped records say, and the digest of its zone and days.
type excludeDef struct {
	Calendar string `json:"calendar"`
	Digest   string `json:"sha256"`
}

// alertDef is a job's alert block as its hash sees it. Its retry and timeout are fixed,
// not definition, until a job can set them.
type alertDef struct {
	On        []string `json:"on"`
	LateAfter int64    `json:"late_after_ns,omitempty"`
	Plugin    string   `json:"plugin"`
	Settings  string   `json:"settings"`
}

// SetHash returns the hex SHA-256 of a whole job set: every job's name and Hash, in name
// order. Nodes publish it, so that a fleet whose nodes were given different job files can
// say which ones differ. The bytes hashed are the JSON array of [name, hash] pairs; they are
// written straight into the hash rather than built whole first, which for a large job set
// would be a large buffer kept by encoding/json's pool long after.
func SetHash(jobs []*Job) string {
	sorted := slices.IsSortedFunc(jobs, func(a, b *Job) int { return strings.Compare(a.Name, b.Name) })
	if !sorted {
		jobs = slices.SortedFunc(slices.Values(jobs), func(a, b *Job) int { return strings.Compare(a.Name, b.Name) })
	}
	h := sha256.New()
	buf := make([]byte, 0, 256)
	buf = append(buf, '[')
	for i, j := range jobs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = appendJSONString(buf, j.Name)
		buf = append(buf, ',')
		buf = appendJSONString(buf, j.Hash)
		buf = append(buf, ']')
		if len(buf) > 128 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	buf = append(buf, ']')
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))
}

// appendJSONString appends s as encoding/json writes it. Job names and hashes need no
// escaping, so they are copied between quotes; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // strings always encode
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
