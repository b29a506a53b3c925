package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleettest"
)

// cpuSample is the CPU time (utime + stime, in clock ticks) of each process, by role, and
// the machine's busy and total time over all CPUs (clock ticks, from /proc/stat): other
// work on the machine competes with the fleet for the CPUs and shows in its lateness.
type cpuSample struct {
	nodes, plugins, redis map[int]int64
	busy, total           int64
}

// sampleCPU reads the CPU time of the runners, their children (the plugins) and Redis.
func sampleCPU(nodes []*fleettest.Node, redisPid int) (cpuSample, error) {
	s := cpuSample{nodes: map[int]int64{}, plugins: map[int]int64{}, redis: map[int]int64{}}
	for _, n := range nodes {
		t, err := cpuTicks(n.Pid())
		if err != nil {
			return s, fmt.Errorf("node %s: %w", n.Name, err)
		}
		s.nodes[n.Pid()] = t
		for _, c := range n.Children() {
			if t, err := cpuTicks(c); err == nil { // a child may end between listing and reading
				s.plugins[c] = t
			}
		}
	}
	t, err := cpuTicks(redisPid)
	if err != nil {
		return s, fmt.Errorf("redis-server: %w", err)
	}
	s.redis[redisPid] = t
	s.busy, s.total, err = machineTicks()
	return s, err
}

// machineTicks returns the busy and total CPU time of the machine, summed over its CPUs.
func machineTicks() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("machine cpu time: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("machine cpu time: unexpected /proc/stat line %q", line)
	}
	// user nice system idle iowait irq softirq steal…; idle and iowait are not busy.
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("machine cpu time: /proc/stat field %q: %w", v, err)
		}
		if i >= 8 { // guest time is already counted in user time
			break
		}
		total += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, total, nil
}

// cpuTicks returns utime + stime of pid, from /proc/PID/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of pid %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: count fields after its end.
	// Fields from the state (field 3) on; utime and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("cpu time of pid %d: malformed /proc stat %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpu time of pid %d: malformed /proc stat %q", pid, s)
	}
	return utime + stime, nil
}

// clockTick is the length of the clock tick that /proc counts CPU time in (getconf CLK_TCK).
func clockTick() (time.Duration, error) {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 0, fmt.Errorf("getconf CLK_TCK: %w", err)
	}
	hz, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || hz <= 0 {
		return 0, fmt.Errorf("getconf CLK_TCK: unexpected %q", out)
	}
	return time.Second / time.Duration(hz), nil
}

// delta is the CPU time used between two samples of one role. A process that ended in
// between is lost (its time is not in after); it is logged.
func delta(role string, before, after map[int]int64, tick time.Duration, logger *slog.Logger) time.Duration {
	var ticks int64
	for pid, a := range after {
		ticks += a - before[pid] // a process started in between counts from zero
	}
	for pid := range before {
		if _, ok := after[pid]; !ok {
			logger.Warn("a process ended during the window: its CPU time is not counted", "role", role, "pid", pid)
		}
	}
	return time.Duration(ticks) * tick
}

// sampleRSS reads each node's resident memory (VmRSS), in MiB, by node name.
func sampleRSS(nodes []*fleettest.Node) (map[string]float64, error) {
	out := map[string]float64{}
	for _, n := range nodes {
		kb, err := fleettest.MemoryKiB(n.Pid(), "VmRSS")
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		out[n.Name] = float64(kb) / 1024
	}
	return out, nil
}
