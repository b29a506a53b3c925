package api

import (
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleet"
)

// timeline lays a job's recent runs on a time axis, a lane per node, as the job page draws
// them (SVG, server-side, so it shows without JavaScript).
type timeline struct {
	Width, Height int
	Lanes         []lane
	Bars          []bar
	Ticks         []tick
}

type lane struct {
	Node string
	Y    int
}

type bar struct {
	X, Y, W float64
	LateX   float64 // where the due time is: the lateness is drawn from here to X
	Status  string
	// Alert is the event of an alert's run, drawn apart: its status is the alert's, not
	// the job's, and it is dated by the occurrence it is about, so it has no lateness stem.
	Alert      string
	Title      string
	Occurrence string
}

type tick struct {
	X     float64
	Label string
}

const (
	tlWidth  = 900
	tlLabel  = 110 // the lane labels' column
	tlLane   = 26
	tlMinBar = 3
	tlRight  = 40 // room for the last tick's label
)

func newTimeline(runs []fleet.Run, now time.Time) *timeline {
	var ran []fleet.Run
	for _, r := range runs {
		if r.DurationMS != nil {
			ran = append(ran, r)
		}
	}
	if len(ran) == 0 {
		return nil
	}
	t0, t1 := ran[0].ScheduledAt, now
	var nodes []string
	for _, r := range ran {
		t0 = minTime(t0, minTime(r.ScheduledAt, r.StartedAt))
		t1 = maxTime(t1, r.EndedAt)
		if !slices.Contains(nodes, r.Node) {
			nodes = append(nodes, r.Node)
		}
	}
	slices.Sort(nodes)
	span := t1.Sub(t0)
	if span <= 0 {
		span = time.Second
	}
	plot := float64(tlWidth - tlLabel - tlRight)
	x := func(t time.Time) float64 { return tlLabel + plot*float64(t.Sub(t0))/float64(span) }
	tl := &timeline{Width: tlWidth, Height: len(nodes)*tlLane + 24}
	laneY := map[string]int{}
	for i, n := range nodes {
		laneY[n] = i * tlLane
		label := n
		if r := []rune(n); len(r) > 15 {
			label = string(r[:14]) + "…"
		}
		tl.Lanes = append(tl.Lanes, lane{Node: label, Y: i * tlLane})
	}
	for _, r := range ran {
		b := bar{X: x(r.StartedAt), Y: float64(laneY[r.Node] + 4), LateX: x(r.ScheduledAt), Status: string(r.Status),
			Occurrence: r.Occurrence, Alert: r.Alert}
		b.W = max(x(r.EndedAt)-b.X, tlMinBar)
		b.Title = fmt.Sprintf("%s on %s: %s, ran %s, %s late (attempt %d)", r.Occurrence, r.Node, r.Status,
			fmtMS(*r.DurationMS), fmtMS(*r.LatenessMS), r.Attempt)
		if r.Alert != "" {
			b.LateX = b.X
			b.Title = fmt.Sprintf("%s alert about %s, on %s: %s, ran %s (attempt %d)", r.Alert, r.Watched, r.Node, r.Status,
				fmtMS(*r.DurationMS), r.Attempt)
		}
		tl.Bars = append(tl.Bars, b)
	}
	for i := range 5 {
		t := t0.Add(span * time.Duration(i) / 4)
		tl.Ticks = append(tl.Ticks, tick{X: x(t), Label: t.UTC().Format("15:04:05")})
	}
	return tl
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// fmtMS shows milliseconds at a precision a person reads.
func fmtMS(ms float64) string {
	return fleet.FormatDuration(time.Duration(ms * float64(time.Millisecond)))
}

var funcs = template.FuncMap{
	"ms": fmtMS,
	"msp": func(p *float64) string {
		if p == nil {
			return "–"
		}
		return fmtMS(*p)
	},
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000")
	},
	"rfc": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"since": func(now, t time.Time) string {
		d := now.Sub(t)
		if d < 0 {
			return "in " + roundHuman(-d)
		}
		return roundHuman(d) + " ago"
	},
	"short": func(h string) string {
		if len(h) > 12 {
			return h[:12]
		}
		return h
	},
	"path": url.PathEscape,
	"inc":  func(n int) int { return n + 1 },
	"add":  func(a, b int) int { return a + b },
	"f":    func(v float64) string { return fmt.Sprintf("%.1f", v) },
}

// roundHuman shows a duration as a person says it: 3s, 4m10s, 2h5m.
func roundHuman(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}
