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

// Settings is the exec handler's settings block; see Schema.
type Settings struct {
	Command []string          `json:"command"`
	Shell   string            `json:"shell"`
	Env     map[string]string `json:"env"`
	Dir     string            `json:"dir"`
	User    string            `json:"user"`
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
	// SIGTERM and SIGKILL.
	KillGrace time.Duration
	// PipeGrace bounds how long output is still read after the group was
	// killed, for a process that escaped the group but kept the pipe open.
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

	cmd := osexec.Command(argv[0], argv[1:]...)
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

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var waitErr error
	cancelled := false
	select {
	case waitErr = <-waited:
	case <-ctx.Done():
		cancelled = true
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(h.KillGrace)
		select {
		case waitErr = <-waited:
			t.Stop()
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			waitErr = <-waited
		}
	}
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
	var argv []string
	switch {
	case len(s.Command) > 0 && s.Shell != "":
		return nil, nil, errors.New("command and shell are mutually exclusive; set one")
	case s.Shell != "":
		argv = []string{"/bin/sh", "-c", s.Shell}
	case len(s.Command) > 0 && s.Command[0] != "":
		argv = s.Command
	case len(s.Command) > 0:
		return nil, nil, errors.New("command[0] is empty")
	default:
		return nil, nil, errors.New("one of command and shell is required")
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, nil, fmt.Errorf("invalid env name %q", k)
		}
	}
	if s.User == "" {
		return argv, nil, nil
	}
	cred, err := credential(s.User)
	return argv, cred, err
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
	return append(env,
		"CRONFLEET_JOB="+run.Job,
		"CRONFLEET_SCHEDULED_AT="+run.ScheduledAt.UTC().Format(ScheduledAtLayout),
		"CRONFLEET_ATTEMPT="+strconv.Itoa(run.Attempt),
		"CRONFLEET_FENCING_TOKEN="+strconv.FormatInt(run.FencingToken, 10),
		"CRONFLEET_OCCURRENCE_ID="+run.OccurrenceID,
		"CRONFLEET_NODE="+run.Node,
	)
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
