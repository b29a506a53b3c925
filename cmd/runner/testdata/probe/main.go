// Command probe is the fault suite's handler plugin (cmd/runner/faults_suite_test.go): each
// run writes to a fenced sink, a Redis of its own that no fault touches, a "beat" as it
// starts and every `every_ms` while it runs, and a "done" when it ends after `run_ms`. The
// sink keeps, per occurrence, the largest fencing token it accepted and refuses a write
// with a smaller one, the way a store that honours fencing tokens refuses a stale holder;
// it logs every write, accepted or refused, with Redis' time, for the suite's checker.
// A refused write ends the run with a permanent error: a newer holder owns the occurrence.
//
// `mode` makes the plugin misbehave instead, for the suite's bad-plugin scenario: "panic"
// panics in the handler, "exit" exits the plugin process, "hang" ignores its cancellation,
// "flood" writes `flood_mib` MiB of output.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// sinkScript accepts a write when its token is at least the largest accepted for the
// occurrence, and logs it either way.
//
// KEYS[1] the largest accepted tokens (hash occurrence -> token), KEYS[2] the log (list)
// ARGV[1] occurrence, ARGV[2] token, ARGV[3] node, ARGV[4] kind ("beat" or "done")
// Returns 1 when accepted, 0 when refused. A log line is "A|R OCC TOKEN NODE KIND MICROS".
var sinkScript = redis.NewScript(`
local t = redis.call('TIME')
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local ok = tonumber(ARGV[2]) >= last
if ok then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local v = 'R'
if ok then v = 'A' end
redis.call('RPUSH', KEYS[2], table.concat({v, ARGV[1], ARGV[2], ARGV[3], ARGV[4], t[1] .. string.format('%06d', tonumber(t[2]))}, ' '))
if ok then return 1 end
return 0
`)

type settings struct {
	Sink     string  `json:"sink"`
	EveryMS  float64 `json:"every_ms"`
	RunMS    float64 `json:"run_ms"`
	Mode     string  `json:"mode"`
	FloodMiB float64 `json:"flood_mib"`
}

type probe struct {
	mu      sync.Mutex
	clients map[string]*redis.Client
}

func (p *probe) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "sink", Type: sdk.TypeString, Required: true, Description: "The fenced sink's Redis URL."},
		{Name: "every_ms", Type: sdk.TypeNumber, Default: 100, Description: "Milliseconds between two beats."},
		{Name: "run_ms", Type: sdk.TypeNumber, Default: 500, Description: "How long a run lasts."},
		{Name: "mode", Type: sdk.TypeString, Default: "", Description: "panic, exit, hang or flood: misbehave."},
		{Name: "flood_mib", Type: sdk.TypeNumber, Default: 100, Description: "Output written in mode flood."},
	}}
}

func (p *probe) Run(ctx context.Context, run *sdk.Run) (*sdk.Result, error) {
	var s settings
	if err := run.Decode(&s); err != nil {
		return nil, err
	}
	switch s.Mode {
	case "panic":
		panic("probe: panicking as asked")
	case "exit":
		os.Exit(3)
	case "hang":
		select {} // ignores ctx: the SDK's watchdog must end the plugin
	case "flood":
		line := strings.Repeat("x", 1023) + "\n"
		for range int(s.FloodMiB * 1024) {
			if _, err := io.WriteString(run.Output(), line); err != nil || ctx.Err() != nil {
				break
			}
		}
		return &sdk.Result{Message: "flooded"}, nil
	}
	rdb := p.client(s.Sink)
	write := func(kind string) error {
		// The write is not tied to ctx: a write that was sent must be logged as accepted or
		// refused, or the checker would not see a stale holder's last attempt.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		ok, err := sinkScript.Run(wctx, rdb, []string{"sink:last", "sink:log"}, run.OccurrenceID, run.FencingToken, run.Node, kind).Int()
		if err != nil {
			return fmt.Errorf("probe: sink: %w", err)
		}
		if ok != 1 {
			return sdk.Permanent(errors.New("probe: the sink refused a write: a newer holder owns the occurrence"))
		}
		return nil
	}
	end := time.Now().Add(time.Duration(s.RunMS * float64(time.Millisecond)))
	every := time.Duration(s.EveryMS * float64(time.Millisecond))
	for {
		if err := write("beat"); err != nil {
			return nil, err
		}
		wait := min(every, time.Until(end))
		if wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("probe: stopped: %w", context.Cause(ctx))
		case <-t.C:
		}
	}
	if err := write("done"); err != nil {
		return nil, err
	}
	return &sdk.Result{Message: "done"}, nil
}

// client returns the sink's client, one per URL for the plugin's life.
func (p *probe) client(url string) *redis.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[url]; ok {
		return c
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		panic(fmt.Sprintf("probe: sink URL %q: %v", url, err))
	}
	c := redis.NewClient(opt)
	p.clients[url] = c
	return c
}

func main() {
	sdk.Serve(&probe{clients: map[string]*redis.Client{}})
}
