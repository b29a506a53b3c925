package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// OutputLimit is how many bytes of output (the tail) a Result keeps.
const OutputLimit = 64 << 10

// ScheduledAtLayout formats CRONFLEET_SCHEDULED_AT.
const ScheduledAtLayout = "2006-01-02T15:04:05.000Z07:00"

// Settings is the exec handler's settings block; see Schema. Each field is
// the HCL attribute named by its JSON tag. Invalid settings fail the run
// with a permanent error, since every attempt would fail the same way.
type Settings struct {
	// Command is the "command" attribute: the program and its arguments,
	// run directly without a shell, so nothing in them is expanded, quoted
	// or globbed. A command[0] without a slash is looked up in the plugin's
	// PATH. Exactly one of Command and Shell must be set; no default.
	Command []string `json:"command"`
	// Shell is the "shell" attribute: a script run as /bin/sh -c SCRIPT,
	// for when the job needs pipes, redirections or variables. Exactly one
	// of Command and Shell must be set; no default.
	Shell string `json:"shell"`
	// Env is the "env" attribute: variables added to the command's
	// environment, which otherwise holds only PATH and the CRONFLEET_*
	// variables of the occurrence (nothing of the runner's, so no secrets
	// leak into jobs). It may replace PATH but not the CRONFLEET_* ones,
	// which are set after it. Names must be non-empty without '=' or NUL.
	// Default: none.
	Env map[string]string `json:"env"`
	// Dir is the "dir" attribute: the command's working directory. Default
	// (empty): the plugin process's working directory.
	Dir string `json:"dir"`
	// User is the "user" attribute: a user name, or else a numeric uid,
	// to run the command as, with that user's uid, primary gid and
	// supplementary groups but an unchanged environment (no HOME or USER;
	// set them in Env if the command needs them). Switching users needs a
	// plugin running as root, otherwise the run fails rather than run the
	// command as the wrong user. Default (empty): the plugin's own user.
	User string `json:"user"`
}

// Schema describes the handler block; see the package doc.
func (h *Handler) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "command", Type: sdk.TypeListString, Description: "The command and its arguments, run without a shell; exactly one of command and shell."},
		{Name: "shell", Type: sdk.TypeString, Description: "A script run with /bin/sh -c; exactly one of command and shell."},
		{Name: "env", Type: sdk.TypeMapString, Description: "Extra environment variables for the command."},
		{Name: "dir", Type: sdk.TypeString, Description: "The working directory (default: the plugin's)."},
		{Name: "user", Type: sdk.TypeString, Description: "Run the command as this user (name or uid); needs a runner running as root."},
	}}
}

// Handler runs commands. The zero value is not ready; use New.
type Handler struct {
	// KillGrace is how long a cancelled command's process group has between
	// SIGTERM and SIGKILL, to clean up (New: 2s). A run whose Run.StopWithin
	// is set gets at most half of that instead: a run cancelled for a lost
	// lease must be dead before the lease expires and another node may claim
	// the occurrence (with a 10s lease the runner allows 2s, so 1s).
	KillGrace time.Duration
	// PipeGrace bounds how long output is still read after the group was
	// killed, for a process that escaped the group but kept the pipe open
	// (New: 1s); without it such a process would keep the run from ending.
	PipeGrace time.Duration
}

// New returns the exec handler with default timings.
func New() sdk.Handler {
	return &Handler{KillGrace: 2 * time.Second, PipeGrace: time.Second}
}

// Run runs the command of run's settings.
func (h *Handler) Run(ctx context.Context, run *sdk.Run) (*sdk.Result, error) {
	var s Settings
	if err := run.Decode(&s); err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	argv, cred, err := s.check()
	if err != nil {
		return nil, sdk.Permanent(fmt.Errorf("exec: settings: %w", err))
	}

	// The command writes into one pipe we own; the read end is ours alone,
	// so Wait returns when the command exits even if a leftover process
	// still holds the write end.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	defer pr.Close()

	cmd := osexec.CommandContext(ctx, argv[0], argv[1:]...)
	// On cancellation (timeout, lost lease, shutdown) the whole group gets SIGTERM, and
	// the leader SIGKILL once WaitDelay passed; both within the time the runner says the
	// run has to stop.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = h.KillGrace
	if run.StopWithin > 0 {
		cmd.WaitDelay = min(cmd.WaitDelay, run.StopWithin/2)
	}
	// A zero WaitDelay would wait for the command forever; a zero grace means SIGKILL at once.
	cmd.WaitDelay = max(cmd.WaitDelay, time.Nanosecond)
	cmd.Env = environ(run, s.Env)
	cmd.Dir = s.Dir
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	name := argv[0]
	if s.Shell != "" {
		name = "shell"
	}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, fmt.Errorf("exec: start %s: %w", name, err)
	}
	pw.Close()
	pgid := cmd.Process.Pid // Setpgid: the group id is the leader's pid

	tail := &tailBuffer{limit: OutputLimit}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(io.MultiWriter(tail, run.Output()), pr)
	}()

	waitErr := cmd.Wait()
	cancelled := ctx.Err() != nil && waitErr != nil
	// Whatever the leader did, nothing of its group outlives the run.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)

	select {
	case <-copied:
	case <-time.After(h.PipeGrace):
		pr.Close() // unblocks the copy
		<-copied
	}

	code := cmd.ProcessState.ExitCode()
	res := &sdk.Result{
		Metadata: map[string]string{"exit_code": strconv.Itoa(code)},
		Output:   tail.String(),
	}
	switch {
	case cancelled:
		res.Message = "cancelled"
		return res, fmt.Errorf("exec: %s: cancelled: %w", name, context.Cause(ctx))
	case code == 0 && waitErr == nil:
		res.Message = "exit code 0"
		return res, nil
	case code < 0:
		res.Message = "killed: " + cmd.ProcessState.String()
		return res, fmt.Errorf("exec: %s: %s", name, cmd.ProcessState)
	default:
		res.Message = "exit code " + strconv.Itoa(code)
		return res, fmt.Errorf("exec: %s exited with code %d", name, code)
	}
}

// check validates s and returns the argv to run and, for User, the
// credential to run it with.
func (s *Settings) check() ([]string, *syscall.Credential, error) {
	argv, err := s.argv()
	if err != nil || s.User == "" {
		return argv, nil, err
	}
	cred, err := credential(s.User)
	return argv, cred, err
}

// argv checks the settings that do not depend on the machine (a user may exist on the
// nodes but not where the job files are validated) and returns the command line.
func (s *Settings) argv() ([]string, error) {
	var argv []string
	switch {
	case len(s.Command) > 0 && s.Shell != "":
		return nil, sdk.InvalidSetting("shell", "command and shell are mutually exclusive; set one")
	case s.Shell != "":
		argv = []string{"/bin/sh", "-c", s.Shell}
	case len(s.Command) > 0 && s.Command[0] != "":
		argv = s.Command
	case len(s.Command) > 0:
		return nil, sdk.InvalidSetting("command", "command[0], the program, is empty")
	default:
		return nil, errors.New("one of command and shell is required")
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, sdk.InvalidSetting("env", "invalid variable name %q", k)
		}
	}
	return argv, nil
}

// Check reports settings that every run would refuse, so that `runner validate` finds
// them; whether the user exists is left to the run, on the node.
func (h *Handler) Check(run *sdk.Run) error {
	var s Settings
	if err := run.Decode(&s); err != nil {
		return err
	}
	_, err := s.argv()
	return err
}

// credential resolves name (a user name or numeric uid) to the uid, gid
// and supplementary groups to run as. Only root may switch users; anyone
// else gets an error rather than a command silently run as the wrong user.
func credential(name string) (*syscall.Credential, error) {
	if euid := os.Geteuid(); euid != 0 {
		return nil, fmt.Errorf("user %q: the plugin runs as uid %d, not root, and cannot switch users", name, euid)
	}
	u, err := user.Lookup(name)
	if err != nil {
		var uerr error
		if u, uerr = user.LookupId(name); uerr != nil {
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: gid %q: %w", name, u.Gid, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(n))
			}
		}
	}
	return cred, nil
}

// environ builds the command's whole environment; see the package doc.
func environ(run *sdk.Run, jobEnv map[string]string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{"PATH=" + path}
	for k, v := range jobEnv {
		env = append(env, k+"="+v)
	}
	env = append(env,
		"CRONFLEET_JOB="+run.Job,
		"CRONFLEET_SCHEDULED_AT="+run.ScheduledAt.UTC().Format(ScheduledAtLayout),
		"CRONFLEET_ATTEMPT="+strconv.Itoa(run.Attempt),
		"CRONFLEET_FENCING_TOKEN="+strconv.FormatInt(run.FencingToken, 10),
		"CRONFLEET_OCCURRENCE_ID="+run.OccurrenceID,
		"CRONFLEET_NODE="+run.Node,
	)
	if a := run.Alert; a != nil {
		env = append(env,
			"CRONFLEET_ALERT_KIND="+a.Kind,
			"CRONFLEET_ALERT_JOB="+a.Job,
			"CRONFLEET_ALERT_OCCURRENCE="+a.Occurrence,
			"CRONFLEET_ALERT_SCHEDULED_AT="+a.ScheduledAt.UTC().Format(ScheduledAtLayout),
			"CRONFLEET_ALERT_STATUS="+a.Status,
			"CRONFLEET_ALERT_ERROR="+a.Error,
		)
	}
	if len(run.Upstream) > 0 {
		env = append(env, "CRONFLEET_UPSTREAM_OCCURRENCE="+strings.Join(run.Upstream, ","))
	}
	if run.ShardCount > 0 {
		env = append(env, "CRONFLEET_SHARD_INDEX="+strconv.Itoa(run.ShardIndex), "CRONFLEET_SHARD_COUNT="+strconv.Itoa(run.ShardCount))
	}
	return env
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
}

// Write keeps the tail of p; it never fails, so a large output cannot
// break the copy that also streams it to the runner.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String returns the bytes kept so far.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
