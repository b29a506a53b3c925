package sdk

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cronfleet/cronfleet/internal/fleettest"
	"github.com/cronfleet/cronfleet/internal/pluginwire"
	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// serveEnv makes the test binary a plugin serving a blocking handler; see
// TestMain.
const serveEnv = "SDK_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) != "" {
		Serve(HandlerFunc(func(ctx context.Context, _ *Run) (*Result, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}), WithShutdownGrace(time.Second))
	}
	os.Exit(m.Run())
}

func TestDecode(t *testing.T) {
	type settings struct {
		Command []string          `json:"command"`
		Env     map[string]string `json:"env"`
	}
	for _, tc := range []struct {
		name     string
		settings string
		want     settings
		wantErr  string
	}{
		{name: "ok", settings: `{"command":["a","b"],"env":{"K":"V"}}`, want: settings{Command: []string{"a", "b"}, Env: map[string]string{"K": "V"}}},
		{name: "empty", settings: ``},
		{name: "empty object", settings: ` {} `},
		{name: "unknown field", settings: `{"comand":["a"]}`, wantErr: `unknown field "comand"`},
		{name: "wrong type", settings: `{"command":"a"}`, wantErr: "cannot unmarshal"},
		{name: "trailing data", settings: `{} {}`, wantErr: "trailing data"},
		{name: "not an object", settings: `[1]`, wantErr: "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got settings
			err := (&Run{Settings: json.RawMessage(tc.settings)}).Decode(&got)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestOutputLines(t *testing.T) {
	var got []string
	r := &Run{output: func(l string) { got = append(got, l) }}
	w := r.Output()
	fmt.Fprint(w, "a\nb")
	fmt.Fprint(w, "c\r\n\nd")
	long := strings.Repeat("x", MaxLineLength+3)
	fmt.Fprint(w, "\n"+long)
	r.flush()
	fmt.Fprint(w, "after\n")
	want := []string{"a", "bc", "", "d", long[:MaxLineLength], long[MaxLineLength:]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// A long line is split between characters, not inside one.
	got = nil
	r = &Run{output: func(l string) { got = append(got, l) }}
	head := strings.Repeat("x", MaxLineLength-1)
	fmt.Fprint(r.Output(), head+"é and more")
	r.flush()
	if diff := cmp.Diff([]string{head, "é and more"}, got); diff != "" {
		t.Errorf("a character across the limit (-want +got):\n%s", diff)
	}
}

// connect serves srv in process and returns the host's view of it.
func connect(t *testing.T, srv *server) pluginwire.Handler {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, pluginwire.PluginSet(srv))
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(pluginwire.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(pluginwire.Handler)
}

func TestServerRun(t *testing.T) {
	at := time.Date(2026, 11, 26, 15, 4, 5, 0, time.UTC)
	var got *Run
	h := connect(t, &server{log: slog.New(slog.DiscardHandler), base: t.Context(), h: HandlerFunc(func(_ context.Context, r *Run) (*Result, error) {
		got = r
		fmt.Fprint(r.Output(), "line 1\npartial")
		return &Result{Message: "m", Metadata: map[string]string{"k": "v"}, Output: "o"}, errors.New("handler says no")
	})})
	var lines []string
	res, err := h.Run(t.Context(), &pb.RunRequest{
		Job: "j", ScheduledAt: timestamppb.New(at), Attempt: 3, FencingToken: 9,
		OccurrenceId: "j@x~part-1-of-4", Node: "n", Settings: []byte(`{"a":1}`), ShardIndex: 1, ShardCount: 4,
	}, time.Time{}, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	wantRun := Run{Job: "j", ScheduledAt: at, Attempt: 3, FencingToken: 9, OccurrenceID: "j@x~part-1-of-4", Node: "n", Settings: json.RawMessage(`{"a":1}`),
		ShardIndex: 1, ShardCount: 4}
	if diff := cmp.Diff(&wantRun, got, cmpopts.IgnoreUnexported(Run{})); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"line 1", "partial"}, lines); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if res.GetMessage() != "m" || res.GetMetadata()["k"] != "v" || res.GetOutput() != "o" || !res.GetHasError() || res.GetError() != "handler says no" {
		t.Errorf("result = %v", res)
	}
}

func TestServerRecoversPanic(t *testing.T) {
	h := connect(t, &server{log: slog.New(slog.DiscardHandler), base: t.Context(), h: HandlerFunc(func(context.Context, *Run) (*Result, error) {
		panic("boom")
	})})
	res, err := h.Run(t.Context(), &pb.RunRequest{}, time.Time{}, nil)
	if err != nil || !res.GetHasError() || !strings.Contains(res.GetError(), "panicked: boom") {
		t.Errorf("got %v, %v; want a result carrying the panic", res, err)
	}
}

// TestCancelledBeforeItsStart: a run sent ahead and cancelled before its start never calls
// the handler, and ends as cancelled.
func TestCancelledBeforeItsStart(t *testing.T) {
	called := make(chan struct{}, 1)
	srv := &server{log: slog.New(slog.DiscardHandler), base: t.Context(), h: HandlerFunc(func(context.Context, *Run) (*Result, error) {
		called <- struct{}{}
		return nil, nil
	})}
	h := connect(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.Run(ctx, &pb.RunRequest{Job: "ahead"}, time.Now().Add(time.Hour), nil)
		errc <- err
	}()
	testwait.For(t, 10*time.Second, "the run to wait for its start", func() bool { return srv.pending(time.Time{}) == 1 })
	cancel()
	if err := <-errc; status.Code(err) != codes.Canceled {
		t.Errorf("err = %v, want code Canceled", err)
	}
	testwait.For(t, 10*time.Second, "the plugin to give up the run", func() bool { return srv.pending(time.Time{}) == 0 })
	select {
	case <-called:
		t.Error("the handler was called for a run cancelled before its start")
	default:
	}
}

func TestShutdownCancelsHandlers(t *testing.T) {
	base, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	srv := &server{log: slog.New(slog.DiscardHandler), base: base, h: HandlerFunc(func(ctx context.Context, _ *Run) (*Result, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})}
	h := connect(t, srv)
	var (
		wg  sync.WaitGroup
		res *pb.RunResult
	)
	wg.Go(func() { res, _ = h.Run(t.Context(), &pb.RunRequest{}, time.Time{}, nil) })
	<-started
	cancel()
	srv.shutdown() // returns only once the handler did
	wg.Wait()
	if !res.GetHasError() || !strings.Contains(res.GetError(), "canceled") {
		t.Errorf("result = %v, want the handler's cancellation", res)
	}
	if _, err := srv.Run(t.Context(), &pb.RunRequest{}, time.Time{}, nil); err == nil {
		t.Error("run after shutdown was accepted")
	}
}

// script runs a shell script that starts the test binary (its $0) as a
// plugin in the background.
type script struct {
	lines chan string
	stdin io.WriteCloser
}

func startScript(t *testing.T, text string) *script {
	t.Helper()
	hs := pluginwire.Handshake()
	cmd := exec.Command("sh", "-c", text, os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"=1", hs.MagicCookieKey+"="+hs.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS="+strconv.Itoa(pluginwire.ProtocolVersion))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &script{lines: make(chan string, 10), stdin: stdin}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	return s
}

// next returns the next line printed by the script or its plugin.
func (s *script) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-s.lines:
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("script printed nothing")
		return ""
	}
}

// pluginReady reads the script's "$!" line and then the plugin's go-plugin
// handshake line, printed once Serve watches signals and its parent.
func (s *script) pluginReady(t *testing.T) int {
	t.Helper()
	pid, err := strconv.Atoi(s.next(t))
	if err != nil {
		t.Fatal(err)
	}
	if l := s.next(t); !strings.Contains(l, "|grpc|") {
		t.Fatalf("plugin printed %q, want its handshake", l)
	}
	return pid
}

// TestServeExitsWhenParentDies orphans a plugin: it must notice the
// changed parent pid and exit by itself.
func TestServeExitsWhenParentDies(t *testing.T) {
	s := startScript(t, `"$0" & echo $!; read line`)
	pid := s.pluginReady(t)
	s.stdin.Close() // the shell exits, the plugin is re-parented
	waitGone(t, pid)
}

func TestServeExitsOnSIGTERM(t *testing.T) {
	// The shell waits for the plugin and prints its exit status.
	s := startScript(t, `"$0" & echo $!; wait $!; echo $?`)
	pid := s.pluginReady(t)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.next(t); code != "0" {
		t.Errorf("plugin exit status %s after SIGTERM, want 0", code)
	}
}

// TestServeSurvivesClosedStderr: when the runner dies, the pipe it read
// the plugin's stderr from has no reader any more, and the plugin's log
// line about shutting down must not kill it (SIGPIPE) before it has
// stopped its handlers.
func TestServeSurvivesClosedStderr(t *testing.T) {
	hs := pluginwire.Handshake()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"=1", hs.MagicCookieKey+"="+hs.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS="+strconv.Itoa(pluginwire.ProtocolVersion))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// The plugin holds the only write end; with the read end closed too,
	// its next write to stderr meets a pipe without a reader.
	w.Close()
	r.Close()

	handshake := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		handshake <- l
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-handshake:
		if !strings.Contains(l, "|grpc|") {
			t.Fatalf("plugin printed %q, want its handshake", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no handshake from the plugin")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if st := cmd.ProcessState; st == nil || !st.Exited() || st.ExitCode() != 0 {
		t.Errorf("plugin ended with %v after SIGTERM, want exit status 0", err)
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for fleettest.Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		<-tick.C
	}
}
