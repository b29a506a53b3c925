package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/redistest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// The tests in this file look at the dashboard as a user does: headless Chromium against a
// real two-node fleet on a real Redis, clicking its buttons. Screenshots are kept in
// $CRONFLEET_ARTEFACTS (default: a cronfleet-artefacts directory in the system's temporary
// directory).

// browser returns a Chromium tab, skipping the test when Chromium is not installed (failing
// it under CI, whose script installs it).
func browser(t *testing.T) context.Context {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; .ci/run installs Debian's chromium package")
		}
		t.Skip("chromium is not installed (apt-get install chromium): the dashboard's browser tests need it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1300, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser, for as long as ctx lives
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shoot keeps a screenshot of the tab as artefact name.png.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CRONFLEET_ARTEFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "cronfleet-artefacts")
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// run runs browser actions with a deadline, failing the test with what was being done.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// count returns how many elements the page has that match the CSS selector sel.
func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	return evaluate[int](t, ctx, fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

// text returns the text of the page's element matching sel, or "" if there is none.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return evaluate[string](t, ctx, fmt.Sprintf("(document.querySelector(%q) || {}).innerText || ''", sel))
}

// evaluate returns the value of the JavaScript expression expr in the page.
func evaluate[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// dashboardJobs is a job every two seconds that records its runs, one that runs only when
// triggered, and one that writes a line and then waits for a gate file before its last.
func dashboardJobs(runs string) string {
	cmd := fleettest.RecordCommand(runs, 0)
	return fmt.Sprintf(`runner {
  namespace = "e2e"
  lease     = "2s"
}
job "tick" {
  schedule = "*/2 * * * * *"
  handler "exec" {
    command = [%[1]q, %[2]q, %[3]q]
    env     = { RUNS = %[4]q }
  }
}
job "on-demand" {
  schedule = "0 0 1 1 *"
  handler "exec" {
    command = [%[1]q, %[2]q, %[3]q]
    env     = { RUNS = %[4]q }
  }
}
job "live" {
  schedule = "0 0 1 1 *"
  handler "exec" {
    command = ["sh", "-c", "echo first line; while [ ! -e \"$GATE\" ]; do sleep 0.05; done; echo last line"]
    env     = { GATE = %[5]q }
  }
}
`, cmd[0], cmd[1], cmd[2], runs, runs+".gate")
}

// startWithHTTP starts node name, with args, serving its dashboard on a free loopback port
// and returns the dashboard's address.
func (f *fleet) startWithHTTP(name string, args ...string) string {
	f.t.Helper()
	port, err := redistest.FreePort()
	if err != nil {
		f.t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	f.start(name, append([]string{"-http", addr}, args...)...)
	base := "http://" + addr
	testwait.For(f.t, 10*time.Second, name+"'s dashboard to answer", func() bool {
		res, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	return base
}

// TestDashboard: the job list shows the job file's jobs; a job's timeline gains runs as they
// happen; the trigger button causes exactly one extra run; pause stops the job on every
// node, and resume starts it again.
func TestDashboard(t *testing.T) {
	t.Parallel()
	f := newFleet(t, dashboardJobs)
	a := f.startWithHTTP("node-a")
	b := f.startWithHTTP("node-b")
	ctx := browser(t)

	run(t, ctx, "open the job list", chromedp.Navigate(a+"/"), chromedp.WaitVisible(`tr.job[data-job="tick"]`))
	if n := count(t, ctx, "tr.job"); n != 3 || count(t, ctx, `tr.job[data-job="on-demand"]`) != 1 || count(t, ctx, `tr.job[data-job="live"]`) != 1 {
		t.Errorf("the job list shows %d jobs, want tick, on-demand and live", n)
	}
	testwait.For(t, 20*time.Second, "the list to show tick's last result", func() bool {
		return strings.Contains(text(t, ctx, `tr.job[data-job="tick"]`), "succeeded")
	})
	if got := text(t, ctx, "p.summary"); !strings.Contains(got, "2 of 2 nodes alive") {
		t.Errorf("summary %q, want both nodes alive", got)
	}
	shoot(t, ctx, "1-jobs")

	// The timeline, served by the other node, gains bars as runs end, without a reload.
	run(t, ctx, "open tick's page", chromedp.Navigate(b+"/jobs/tick"), chromedp.WaitVisible(`svg.timeline`))
	before := count(t, ctx, "svg.timeline g.bar")
	testwait.For(t, 20*time.Second, "the timeline to gain two runs", func() bool { return count(t, ctx, "svg.timeline g.bar") >= before+2 })
	shoot(t, ctx, "2-timeline")

	// Trigger: exactly one run of a job that has none otherwise.
	run(t, ctx, "trigger on-demand", chromedp.Navigate(a+"/jobs/on-demand"), chromedp.WaitVisible(`#trigger`), chromedp.Click(`#trigger`, chromedp.NodeVisible),
		chromedp.WaitVisible(`p.message`))
	if msg := text(t, ctx, "p.message"); !strings.Contains(msg, "on-demand triggered") {
		t.Errorf("after the trigger the page says %q", msg)
	}
	onDemand := func() int {
		n := 0
		for occ := range starts(f.events()) {
			if strings.HasPrefix(occ, "on-demand@") {
				n++
			}
		}
		return n
	}
	testwait.For(t, 20*time.Second, "the triggered run to succeed", func() bool {
		h := f.history("e2e", "on-demand")
		return len(h) == 1 && h[0].Status == "succeeded"
	})
	testwait.For(t, 20*time.Second, "the run to show on the page", func() bool { return count(t, ctx, "tr.run") == 1 })
	shoot(t, ctx, "3-triggered")

	// Pause, with a note: no node starts tick any more, and its occurrences are recorded
	// as skipped with the note.
	run(t, ctx, "pause tick", chromedp.Navigate(a+"/jobs/tick"), chromedp.WaitVisible(`#pause`),
		chromedp.SendKeys(`#note`, "maintenance window"), chromedp.Click(`#pause`, chromedp.NodeVisible), chromedp.WaitVisible(`p.banner`))
	paused := time.Now()
	skippedAfter := func(after time.Time) int {
		n := 0
		for _, r := range f.history("e2e", "tick") {
			if r.Status == "skipped" && r.ScheduledAt.After(after) && strings.Contains(r.Error, "maintenance window") {
				n++
			}
		}
		return n
	}
	testwait.For(t, 20*time.Second, "three occurrences to be skipped", func() bool { return skippedAfter(paused) >= 3 })
	for occ := range starts(f.events()) {
		if _, due := dueOf(t, occ); strings.HasPrefix(occ, "tick@") && due.After(paused.Add(time.Second)) {
			t.Errorf("%s started while the job was paused", occ)
		}
	}
	shoot(t, ctx, "4-paused")

	run(t, ctx, "resume tick", chromedp.Click(`#resume`, chromedp.NodeVisible), chromedp.WaitVisible(`#pause`))
	resumed := time.Now()
	testwait.For(t, 20*time.Second, "tick to run again", func() bool {
		for occ := range starts(f.events()) {
			if _, due := dueOf(t, occ); strings.HasPrefix(occ, "tick@") && due.After(resumed) {
				return true
			}
		}
		return false
	})
	shoot(t, ctx, "5-resumed")
	if n := onDemand(); n != 1 {
		t.Errorf("on-demand started %d times, want exactly the triggered once", n)
	}

	// A running handler's output shows before the handler ends, on node-b's page whichever
	// node runs it: the lines travel through Redis.
	res, err := http.Post(a+"/v1/jobs/live/trigger", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var trig struct{ Occurrence string }
	if err := json.NewDecoder(res.Body).Decode(&trig); err != nil || res.StatusCode != 202 {
		t.Fatalf("trigger live: %d, %v", res.StatusCode, err)
	}
	res.Body.Close()
	run(t, ctx, "open the live run", chromedp.Navigate(b+"/runs/"+url.PathEscape(trig.Occurrence)), chromedp.WaitVisible(`#output`))
	testwait.For(t, 20*time.Second, "the first line to show while the handler runs", func() bool {
		return strings.Contains(text(t, ctx, "#output"), "first line")
	})
	if got := text(t, ctx, "#output"); strings.Contains(got, "last line") {
		t.Fatalf("the output shows the last line before the gate opened:\n%s", got)
	}
	if h := f.history("e2e", "live"); len(h) != 0 {
		t.Fatalf("the run has a record already (%+v): the output was not shown live", h)
	}
	shoot(t, ctx, "6-live-output")
	if err := os.WriteFile(f.runs+".gate", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 20*time.Second, "the last line and the end", func() bool {
		out := text(t, ctx, "#output")
		return strings.Contains(out, "last line") && strings.Contains(out, "[attempt 1 ended: succeeded]")
	})
	shoot(t, ctx, "7-output-ended")

	// The audit page, on the other node, lists the actions.
	run(t, ctx, "open the audit log", chromedp.Navigate(b+"/audit"), chromedp.WaitVisible(`table.audit`))
	log := text(t, ctx, "table.audit")
	for _, want := range []string{"trigger", "pause", "resume", "maintenance window"} {
		if !strings.Contains(log, want) {
			t.Errorf("the audit page lacks %q:\n%s", want, log)
		}
	}
	shoot(t, ctx, "8-audit")
}
