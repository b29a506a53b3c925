// Package fleettest starts real runner processes, for end-to-end tests and the benchmark
// command: the guarantees are proven on the real binary, with real plugins and signals, not on
// an in-process imitation.
package fleettest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildRunner builds cmd/runner into dir and returns the binary's path. moduleDir is the
// module's root (the directory holding go.mod).
func BuildRunner(moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "runner")
	return bin, Build(moduleDir, "./cmd/runner", bin)
}

// Build builds the package pkg, named relative to moduleDir (the module's root), into the
// binary out: the runner, or a plugin for a test's plugin directory.
func Build(moduleDir, pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = moduleDir
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, output)
	}
	return nil
}

// ModuleRoot finds the directory holding go.mod, from the working directory upwards.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// NodeConfig describes one runner process.
type NodeConfig struct {
	// Bin is the runner binary.
	Bin string
	// Name is the node name (-node).
	Name string
	// Configs are the job files (-config).
	Configs []string
	// RedisURL is passed as -redis.
	RedisURL string
	// LogPath receives the node's stderr.
	LogPath string
	// Args are extra arguments after "run".
	Args []string
	// Env is added to the runner's environment ("KEY=value"): the test switches.
	Env []string
}

// Node is a running runner process.
type Node struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	mu      sync.Mutex
	err     error
}

// StartNode starts a runner process.
func StartNode(c NodeConfig) (*Node, error) {
	args := []string{"run", "-node", c.Name}
	if c.RedisURL != "" {
		args = append(args, "-redis", c.RedisURL)
	}
	for _, cfg := range c.Configs {
		args = append(args, "-config", cfg)
	}
	args = append(args, c.Args...)
	logf, err := os.Create(c.LogPath)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", c.Name, err)
	}
	cmd := exec.Command(c.Bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(append(os.Environ(), "CRONFLEET_REDIS_URL="), c.Env...)
	// Its own process group: signals aimed at it never reach the test; Pdeathsig so that a
	// crashed test leaves no runner behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("node %s: start: %w", c.Name, err)
	}
	n := &Node{Name: c.Name, LogPath: c.LogPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logf.Close()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(n.exited)
	}()
	return n, nil
}

// Pid is the runner's process id.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// Signal sends sig to the runner process (not to its plugins).
func (n *Node) Signal(sig syscall.Signal) error {
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("node %s: signal %v: %w", n.Name, sig, err)
	}
	return nil
}

// Exited is closed when the process has ended.
func (n *Node) Exited() <-chan struct{} { return n.exited }

// Wait waits up to timeout for the process to end and returns its exit error.
func (n *Node) Wait(timeout time.Duration) error {
	select {
	case <-n.exited:
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.err
	case <-time.After(timeout):
		return fmt.Errorf("node %s: still running after %s", n.Name, timeout)
	}
}

// Stop ends the node: SIGTERM, then SIGKILL if it has not ended after grace.
func (n *Node) Stop(grace time.Duration) error {
	select {
	case <-n.exited:
		return nil
	default:
	}
	_ = n.Signal(syscall.SIGCONT) // a paused node cannot drain
	_ = n.Signal(syscall.SIGTERM)
	if err := n.Wait(grace); err == nil || !strings.Contains(err.Error(), "still running") {
		return err
	}
	_ = n.Signal(syscall.SIGKILL)
	return n.Wait(10 * time.Second)
}

// Log returns what the node has logged so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.LogPath)
	return string(b)
}

// Children returns the pids of the processes whose parent is the node: its plugins.
func (n *Node) Children() []int {
	return ChildrenOf(n.Pid())
}

// ChildrenOf lists the pids of the processes whose parent is pid, from /proc.
func ChildrenOf(pid int) []int {
	return processes(func(p int) bool {
		ppid, ok := parentOf(p)
		return ok && ppid == pid
	})
}

// ProcessesIn lists the live processes whose executable lies in dir: what a test's
// plugin directory left running.
func ProcessesIn(dir string) []int {
	return processes(func(p int) bool {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p))
		return err == nil && strings.HasPrefix(exe, dir+string(filepath.Separator)) && Alive(p)
	})
}

// processes lists the pids in /proc for which keep holds.
func processes(keep func(pid int) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if p, err := strconv.Atoi(e.Name()); err == nil && keep(p) {
			out = append(out, p)
		}
	}
	return out
}

func parentOf(pid int) (int, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PPid:"); ok {
			ppid, err := strconv.Atoi(strings.TrimSpace(v))
			return ppid, err == nil
		}
	}
	return 0, false
}

// Alive reports whether a process with pid exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// MemoryKiB reads one of a process' memory figures from /proc/PID/status, in KiB: "VmRSS"
// (resident now) or "VmHWM" (the peak), for the tests and the benchmark that watch a node's
// memory.
func MemoryKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("memory of pid %d: %w", pid, err)
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("memory of pid %d: %s %q: %w", pid, field, v, err)
			}
			return kb, nil
		}
	}
	return 0, fmt.Errorf("memory of pid %d: no %s in its status", pid, field)
}
