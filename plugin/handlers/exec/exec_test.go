package exec_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/plugin/handlers/exec"
	"github.com/cronfleet/cronfleet/plugin/sdk"
)

func run(t *testing.T, ctx context.Context, settings string) (*sdk.Result, error) {
	t.Helper()
	return exec.New().Run(ctx, &sdk.Run{
		Job:          "j",
		ScheduledAt:  time.Date(2026, 11, 26, 15, 4, 5, 7e6, time.FixedZone("X", 3600)),
		Attempt:      1,
		FencingToken: 5,
		OccurrenceID: "j@1",
		Node:         "n1",
		Settings:     []byte(settings),
	})
}

func TestEnvironment(t *testing.T) {
	t.Setenv("CRONFLEET_TEST_SECRET", "x")
	res, err := run(t, t.Context(), `{"command":["env"],"env":{"A":"1","CRONFLEET_JOB":"fake"}}`)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(res.Output)
	slices.Sort(got)
	want := []string{
		"A=1",
		"CRONFLEET_ATTEMPT=1",
		"CRONFLEET_FENCING_TOKEN=5",
		"CRONFLEET_JOB=j",
		"CRONFLEET_NODE=n1",
		"CRONFLEET_OCCURRENCE_ID=j@1",
		"CRONFLEET_SCHEDULED_AT=2026-11-26T14:04:05.007Z",
		"PATH=" + os.Getenv("PATH"),
	}
	if !slices.Equal(want, got) {
		t.Errorf("env = %q, want %q", got, want)
	}
}

// TestShardEnvironment: a part of a sharded occurrence is told its index and the count;
// a run that is not a part (the test above) is told neither.
func TestShardEnvironment(t *testing.T) {
	res, err := exec.New().Run(t.Context(), &sdk.Run{
		Job: "j", Attempt: 1, OccurrenceID: "j@1~part-2-of-5", ShardIndex: 2, ShardCount: 5,
		Settings: []byte(`{"command":["sh","-c","echo $CRONFLEET_SHARD_INDEX/$CRONFLEET_SHARD_COUNT"]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(res.Output); got != "2/5" {
		t.Errorf("output %q, want 2/5", got)
	}
}

func TestSettingsErrors(t *testing.T) {
	for _, s := range []string{`{}`, `{"command":[]}`, `{"command":["true"],"shell":true}`, `{"command":["true"],"env":{"A=B":"1"}}`} {
		if _, err := run(t, t.Context(), s); err == nil {
			t.Errorf("settings %s accepted", s)
		}
	}
	if _, err := run(t, t.Context(), `{"command":["/nonexistent/cmd"]}`); err == nil || !strings.Contains(err.Error(), "start") {
		t.Errorf("missing command: err = %v", err)
	}
}

func TestDirAndExitCode(t *testing.T) {
	dir := t.TempDir()
	res, err := run(t, t.Context(), fmt.Sprintf(`{"command":["sh","-c","pwd; exit 4"],"dir":%q}`, dir))
	if err == nil || !strings.Contains(err.Error(), "exited with code 4") {
		t.Errorf("err = %v", err)
	}
	if res.Metadata["exit_code"] != "4" || strings.TrimSpace(res.Output) != dir {
		t.Errorf("result = %+v", res)
	}
}

func TestLeftoversKilledOnNormalExit(t *testing.T) {
	res, err := run(t, t.Context(), `{"command":["sh","-c","sleep 300 & echo $!"]}`)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(res.Output))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}

func TestCancelKillsGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	var pids []int
	r := &sdk.Run{Settings: []byte(`{"command":["sh","-c","trap '' TERM; echo $$; sleep 300 & echo $!; sleep 300"]}`)}
	res, err := exec.New().Run(ctx, r)
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("err = %v, want the deadline", err)
	}
	for _, f := range strings.Fields(res.Output) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, n)
	}
	if len(pids) != 2 {
		t.Fatalf("output %q, want two pids", res.Output)
	}
	waitGone(t, pids...)
}

// TestStopWithinBoundsKillGrace: a run cancelled for a lost lease must be dead before the
// lease expires, however long KillGrace is; the runner says how long that is.
func TestStopWithinBoundsKillGrace(t *testing.T) {
	h := &exec.Handler{KillGrace: time.Hour, PipeGrace: time.Second}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	r := &sdk.Run{
		Settings:   []byte(`{"command":["sh","-c","trap '' TERM; echo $$; sleep 300"]}`),
		StopWithin: 200 * time.Millisecond,
	}
	type result struct {
		res *sdk.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := h.Run(ctx, r)
		done <- result{res, err}
	}()
	select {
	case got := <-done:
		if got.err == nil {
			t.Fatal("a cancelled run succeeded")
		}
		pid, err := strconv.Atoi(strings.TrimSpace(got.res.Output))
		if err != nil {
			t.Fatalf("output %q, want a pid", got.res.Output)
		}
		waitGone(t, pid)
	case <-time.After(30 * time.Second):
		t.Fatal("the run waited for its hour-long KillGrace instead of the run's StopWithin")
	}
}

func TestOutputTail(t *testing.T) {
	res, err := run(t, t.Context(), `{"command":["sh","-c","i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Output) != exec.OutputLimit || !strings.HasSuffix(res.Output, "line19999\n") {
		t.Errorf("output: %d bytes ending %q", len(res.Output), res.Output[len(res.Output)-20:])
	}
}

func waitGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for slices.ContainsFunc(pids, fleettest.Alive) {
		if time.Now().After(deadline) {
			t.Fatalf("processes %v still running", pids)
		}
		<-tick.C
	}
}

func TestShell(t *testing.T) {
	res, err := run(t, t.Context(), `{"shell":"echo $CRONFLEET_JOB | tr j J; exit 5"}`)
	if err == nil || !strings.Contains(err.Error(), "shell exited with code 5") || sdk.IsPermanent(err) {
		t.Errorf("err = %v, want a retryable exit code 5", err)
	}
	if res.Output != "J\n" || res.Metadata["exit_code"] != "5" || res.Message != "exit code 5" {
		t.Errorf("result = %+v", res)
	}
}

func TestInvalidSettingsArePermanent(t *testing.T) {
	for _, s := range []string{
		`{}`, `{"command":[]}`, `{"command":[""]}`, `{"command":["true"],"shell":"true"}`,
		`{"shell":"true","env":{"A=B":"1"}}`, `{"shell":true}`, `{"comand":["true"]}`,
	} {
		if _, err := run(t, t.Context(), s); !sdk.IsPermanent(err) {
			t.Errorf("settings %s: err = %v, want a permanent error", s, err)
		}
	}
}

func TestUser(t *testing.T) {
	if os.Geteuid() != 0 {
		_, err := run(t, t.Context(), `{"shell":"true","user":"nobody"}`)
		if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "not root") {
			t.Errorf("user as non-root: err = %v, want a permanent refusal", err)
		}
		return
	}
	res, err := run(t, t.Context(), `{"command":["id","-u"],"user":"nobody"}`)
	if err != nil {
		t.Skipf("cannot run as nobody here: %v", err)
	}
	if strings.TrimSpace(res.Output) == "0" {
		t.Errorf("command ran as root: %q", res.Output)
	}
	if _, err := run(t, t.Context(), `{"shell":"true","user":"no-such-user-cronfleet"}`); !sdk.IsPermanent(err) {
		t.Errorf("unknown user: err = %v", err)
	}
}

func TestSchemaMatchesSettings(t *testing.T) {
	schema := exec.New().Schema()
	if err := schema.Validate(); err != nil {
		t.Fatal(err)
	}
	full := `{"command":["true"],"shell":"","env":{"A":"b"},"dir":"/","user":""}`
	if err := schema.CheckSettings([]byte(full)); err != nil {
		t.Errorf("schema rejects settings Decode accepts: %v", err)
	}
	var s exec.Settings
	if err := (&sdk.Run{Settings: []byte(full)}).Decode(&s); err != nil {
		t.Errorf("Decode rejects settings the schema accepts: %v", err)
	}
}

// TestCheckFindsWhatRunsWouldRefuse: what `runner validate` reports, and where; a user is
// looked up by the runs on the nodes, not where the job files are validated.
func TestCheckFindsWhatRunsWouldRefuse(t *testing.T) {
	for _, tc := range []struct {
		settings string
		want     []sdk.Problem
	}{
		{`{"command":["true"]}`, nil},
		{`{"shell":"true","user":"no-such-user-cronfleet"}`, nil},
		{`{}`, []sdk.Problem{{Message: "one of command and shell is required"}}},
		{`{"command":[""]}`, []sdk.Problem{{Attribute: "command", Message: "command[0], the program, is empty"}}},
		{`{"command":["true"],"shell":"true"}`, []sdk.Problem{{Attribute: "shell", Message: "command and shell are mutually exclusive; set one"}}},
		{`{"shell":"true","env":{"A=B":"1"}}`, []sdk.Problem{{Attribute: "env", Message: `invalid variable name "A=B"`}}},
	} {
		got := sdk.Check(exec.New(), []byte(tc.settings))
		if !slices.Equal(got, tc.want) {
			t.Errorf("Check(%s) = %+v, want %+v", tc.settings, got, tc.want)
		}
		if tc.want != nil {
			if _, err := run(t, t.Context(), tc.settings); err == nil || !sdk.IsPermanent(err) {
				t.Errorf("Run(%s) = %v, want the permanent error Check foresaw", tc.settings, err)
			}
		}
	}
}

// TestAlertEnvironment: an alert's command sees the event.
func TestAlertEnvironment(t *testing.T) {
	res, err := exec.New().Run(t.Context(), &sdk.Run{
		Job: "j", OccurrenceID: "j@1~alert-failure", Settings: []byte(`{"command":["env"]}`),
		Alert: &sdk.Alert{Kind: "failure", Job: "j", Occurrence: "j@1", ScheduledAt: time.Date(2026, 11, 26, 15, 4, 5, 0, time.UTC),
			Status: "failed", Error: "exit_status_1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(res.Output)
	for _, want := range []string{
		"CRONFLEET_ALERT_KIND=failure", "CRONFLEET_ALERT_JOB=j", "CRONFLEET_ALERT_OCCURRENCE=j@1",
		"CRONFLEET_ALERT_SCHEDULED_AT=2026-11-26T15:04:05.000Z", "CRONFLEET_ALERT_STATUS=failed",
		"CRONFLEET_ALERT_ERROR=exit_status_1", "CRONFLEET_OCCURRENCE_ID=j@1~alert-failure",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("env %q lacks %s", got, want)
		}
	}
}
