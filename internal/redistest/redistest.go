// Package redistest starts real redis-server processes for tests.
//
// The guarantees cronfleet makes (exactly once, no loss, fencing, failover) are only worth
// something when proven against the real engine, so tests start their own redis-server on a
// free loopback port instead of sharing the machine's server: they stay isolated and
// parallel-safe, and they can kill, pause and restart Redis at will.
//
// Failover and resharding are where those guarantees are most easily lost, so the package
// also starts a Sentinel set (StartSentinel) and a Redis Cluster (StartCluster, and
// StartClusterWithReplicas for one that can fail over) and drives the real events: a killed
// master (Sentinels.WaitFailover, Cluster.KillMaster), a slot migrated while clients write
// into it (Cluster.MigrateSlot).
//
// When redis-server is not installed a test skips with a clear message, except under CI
// (CI=true), where a missing server is a failure: a green CI must mean the guarantees ran.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process owned by a test (or a benchmark command). Its port and data directory survive
// Kill/Restart so a test can model a crashed and recovered server.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	conf string // configuration file; redis-server only reads one given as its first argument
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
	log *bytes.Buffer
}

// Binary returns the path of redis-server, skipping the test (or failing it under CI) when
// it is not installed.
func Binary(t testing.TB) string {
	t.Helper()
	return lookBinary(t, "redis-server")
}

func lookBinary(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found on PATH; CI must install it (apt-get install -y redis-server)", name)
		}
		t.Skipf("%s not found on PATH; install it (apt-get install -y redis-server) to run this test", name)
	}
	return bin
}

// Start starts a redis-server on a free loopback port with no persistence and registers its
// shutdown with t.Cleanup. extra are more redis-server arguments ("--maxmemory", "10mb", ...).
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s, err := Launch(Binary(t), t.TempDir(), extra...)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s.t = t
	t.Cleanup(s.Kill)
	return s
}

// Launch starts redis-server bin on a free loopback port with dir as its working directory,
// outside of a test (benchmark commands use it). The caller must Kill it.
func Launch(bin, dir string, extra ...string) (*Server, error) {
	return launch(bin, dir, FreePort, func(s *Server) error {
		s.args = extra
		return nil
	})
}

// launch starts bin in dir on a port from pick. configure sets the arguments that depend on
// the port (cluster config file names, a sentinel's config file) and may write files into dir.
func launch(bin, dir string, pick func() (int, error), configure func(*Server) error) (*Server, error) {
	var err error
	for range 5 { // a free port can be taken between probing and binding: try a few
		s := &Server{bin: bin, dir: dir}
		if s.port, err = pick(); err != nil {
			return nil, err
		}
		if err = configure(s); err != nil {
			return nil, err
		}
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("start redis-server: %w", err)
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	args = append(args,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--protected-mode", "no", "--logfile", "",
	)
	args = append(args, s.args...)
	cmd := exec.Command(s.bin, args...)
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so a SIGSTOP of the test's group never hits it by accident.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited: %v: %s", err, log.String())
		default:
		}
		if s.ping() == nil {
			// The port may answer for another test's server that took it first, while ours
			// is still on its way to failing to bind: only our own process counts.
			if err := s.ownedBy(cmd.Process.Pid); err != nil {
				_ = cmd.Process.Kill()
				<-exited
				return err
			}
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d not ready after 10s: %s", s.port, log.String())
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline, not synchronisation
	}
	s.mu.Lock()
	s.cmd, s.log = cmd, log
	s.mu.Unlock()
	// Reap the process when it ends, whoever ends it.
	go func() { <-exited }()
	return nil
}

func (s *Server) ping() error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// ownedBy checks that the server answering on s.port is process pid.
func (s *Server) ownedBy(pid int) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("check port %d: %w", s.port, err)
	}
	if got := InfoField(info, "process_id"); got != strconv.Itoa(pid) {
		return fmt.Errorf("port %d answered by process %s, not by %d", s.port, got, pid)
	}
	return nil
}

// InfoField returns the value of field in the text of INFO (or CLUSTER INFO), "" when absent.
func InfoField(info, field string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// running reports whether the process is up, that is neither killed nor never started.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// poll calls cond every interval until it returns nil or ctx ends; then it returns an
// error carrying cond's last one, which says what was still missing.
func poll(ctx context.Context, every time.Duration, cond func(context.Context) error) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last check: %w", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// addrs returns the host:port of each server, in order.
func addrs(servers []*Server) []string {
	a := make([]string, len(servers))
	for i, s := range servers {
		a[i] = s.Addr()
	}
	return a
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// URL is the redis:// URL of the server, as the runner takes it.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir is the server's working directory.
func (s *Server) Dir() string { return filepath.Clean(s.dir) }

// Client returns a client for the server, closed at the end of the test.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("redis-server not running")
	}
	return s.cmd.Process.Signal(sig)
}

// Kill stops the server with SIGKILL (a crash: nothing is flushed) and waits until its port
// no longer answers.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for s.ping() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// Restart starts the server again on the same port and directory after Kill.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing answers.
func (s *Server) Pause() {
	s.t.Helper()
	if err := s.signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("redistest: pause: %v", err)
	}
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() {
	s.t.Helper()
	if err := s.signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("redistest: resume: %v", err)
	}
}
