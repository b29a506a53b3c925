package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// masterName is the name the sentinels monitor the master under.
	masterName = "cfmaster"
	// sentinelCount is the smallest count that still elects a leader with one sentinel down.
	sentinelCount = 3
	quorum        = sentinelCount/2 + 1
)

// Sentinels is a master, its replica and the sentinels watching them, started for a test.
// A failover is where acknowledged writes get lost and clients talk to a demoted master, so
// the code that claims to survive one is tested against a real one.
type Sentinels struct {
	t         testing.TB
	data      []*Server // the master at start, then the replica
	sentinels []*Server
	admin     []*redis.SentinelClient // by index of sentinels
}

// StartSentinel starts the master and the replica (both with extra as more redis-server
// arguments, "--appendonly", "yes" say) and a quorum of sentinels, and returns once the
// sentinels know the replica and each other: before that, killing the master would not fail
// over. Cleanup kills every process.
func StartSentinel(t testing.TB, extra ...string) *Sentinels {
	t.Helper()
	bin := Binary(t)
	// Redis waits for more replicas before a diskless full sync, by default long enough to
	// dominate the test; either server may serve one, the replica after a failover. extra
	// comes later, so it can still set its own delay.
	data := append([]string{"--repl-diskless-sync-delay", "0"}, extra...)
	master := Start(t, data...)
	replica := Start(t, slices.Concat(data, []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port())})...)
	s := &Sentinels{t: t, data: []*Server{master, replica}}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// A link up before the sentinels start lets them find the replica in the master's first
	// INFO rather than in one a refresh period later.
	rc := replica.Client(t)
	err := poll(ctx, 10*time.Millisecond, func(ctx context.Context) error {
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Errorf("info replication of %s: %w", replica.Addr(), err)
		}
		if st := InfoField(info, "master_link_status"); st != "up" {
			return fmt.Errorf("replica %s: master_link_status:%s", replica.Addr(), st)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("redistest: replica did not sync: %v", err)
	}

	for range sentinelCount {
		sn, err := launch(bin, t.TempDir(), FreePort, func(sn *Server) error {
			return writeSentinelConf(sn, master.Port())
		})
		if err != nil {
			t.Fatalf("redistest: sentinel: %v", err)
		}
		sn.t = t
		t.Cleanup(sn.Kill)
		s.sentinels = append(s.sentinels, sn)
		a := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr()})
		t.Cleanup(func() { _ = a.Close() })
		s.admin = append(s.admin, a)
	}
	if err := poll(ctx, 50*time.Millisecond, s.ready); err != nil {
		t.Fatalf("redistest: sentinels not ready: %v", err)
	}
	return s
}

// writeSentinelConf writes sn's configuration file: a sentinel rewrites it as it learns
// about instances, so it must be a file of its own, in a directory of its own.
func writeSentinelConf(sn *Server, masterPort int) error {
	conf := filepath.Join(sn.dir, "sentinel.conf")
	body := fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode no
sentinel resolve-hostnames no
sentinel monitor %s 127.0.0.1 %d %d
sentinel down-after-milliseconds %[2]s 1000
sentinel failover-timeout %[2]s 5000
sentinel parallel-syncs %[2]s 1
`, sn.port, masterName, masterPort, quorum)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return fmt.Errorf("write sentinel config: %w", err)
	}
	sn.conf, sn.args = conf, []string{"--sentinel"}
	return nil
}

// ready reports nil once every sentinel sees the master up, the replica up and linked, and
// all the other sentinels: what a quorum needs to elect a leader and promote the replica.
func (s *Sentinels) ready(ctx context.Context) error {
	for i, a := range s.admin {
		addr := s.sentinels[i].Addr()
		m, err := a.Master(ctx, masterName).Result()
		if err != nil {
			return fmt.Errorf("sentinel master on %s: %w", addr, err)
		}
		if m["flags"] != "master" || m["num-slaves"] != "1" || m["num-other-sentinels"] != strconv.Itoa(sentinelCount-1) {
			return fmt.Errorf("sentinel %s: flags %s, %s replicas, %s other sentinels",
				addr, m["flags"], m["num-slaves"], m["num-other-sentinels"])
		}
		rs, err := a.Replicas(ctx, masterName).Result()
		if err != nil {
			return fmt.Errorf("sentinel replicas on %s: %w", addr, err)
		}
		if len(rs) != 1 || rs[0]["flags"] != "slave" || rs[0]["master-link-status"] != "ok" {
			return fmt.Errorf("sentinel %s: replicas %v", addr, rs)
		}
	}
	return nil
}

// Name is the master name the sentinels monitor, as clients ask for it.
func (s *Sentinels) Name() string { return masterName }

// URL is the redis-sentinel:// URL of the set, as the runner takes it.
func (s *Sentinels) URL() string {
	return "redis-sentinel://" + strings.Join(s.SentinelAddrs(), ",") + "/0?master=" + masterName
}

// SentinelAddrs returns the sentinels' host:port, as a failover client takes them.
func (s *Sentinels) SentinelAddrs() []string {
	return addrs(s.sentinels)
}

// Servers returns the data servers, the master at start first, so a test can kill, pause or
// restart either whatever its role has become.
func (s *Sentinels) Servers() []*Server { return slices.Clone(s.data) }

// Master returns the server the sentinels currently name master, waiting until a majority of
// them agree: clients follow the sentinels, not the roles the servers claim.
func (s *Sentinels) Master() *Server {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), 10*time.Second)
	defer cancel()
	var m *Server
	err := poll(ctx, 20*time.Millisecond, func(ctx context.Context) error {
		views, err := s.views(ctx)
		if err != nil {
			return err
		}
		counts := map[*Server]int{}
		for _, v := range views {
			counts[v]++
			if counts[v] > len(s.sentinels)/2 {
				m = v
				return nil
			}
		}
		return fmt.Errorf("no majority among sentinels naming %v", addrs(views))
	})
	if err != nil {
		s.t.Fatalf("redistest: master of %s: %v", masterName, err)
	}
	return m
}

// WaitFailover waits until every sentinel names a master other than from and that server
// answers ROLE as master, and returns it: from then on a failover client reaches the new
// master whichever sentinel it asks.
func (s *Sentinels) WaitFailover(t testing.TB, from *Server, timeout time.Duration) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var m *Server
	err := poll(ctx, 20*time.Millisecond, func(ctx context.Context) error {
		views, err := s.views(ctx)
		if err != nil {
			return err
		}
		for _, v := range views {
			if v == from || v != views[0] {
				return fmt.Errorf("sentinels name %v", addrs(views))
			}
		}
		role, err := serverRole(ctx, views[0])
		if err != nil {
			return err
		}
		if role != "master" {
			return fmt.Errorf("sentinels name %s, which says it is %s", views[0].Addr(), role)
		}
		m = views[0]
		return nil
	})
	if err != nil {
		t.Fatalf("redistest: no failover away from %s: %v", from.Addr(), err)
	}
	return m
}

func serverRole(ctx context.Context, srv *Server) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	role, err := c.Do(ctx, "role").Slice()
	if err != nil {
		return "", fmt.Errorf("role of %s: %w", srv.Addr(), err)
	}
	if len(role) == 0 {
		return "", fmt.Errorf("role of %s: empty reply", srv.Addr())
	}
	return fmt.Sprint(role[0]), nil
}

// views returns the master each running sentinel names, mapped to its data server.
func (s *Sentinels) views(ctx context.Context) ([]*Server, error) {
	var views []*Server
	for i, a := range s.admin {
		if !s.sentinels[i].running() {
			continue
		}
		hp, err := a.GetMasterAddrByName(ctx, masterName).Result()
		if err != nil {
			return nil, fmt.Errorf("get-master-addr-by-name on %s: %w", s.sentinels[i].Addr(), err)
		}
		if len(hp) != 2 {
			return nil, fmt.Errorf("get-master-addr-by-name on %s: reply %q", s.sentinels[i].Addr(), hp)
		}
		j := slices.IndexFunc(s.data, func(d *Server) bool { return strconv.Itoa(d.Port()) == hp[1] })
		if j < 0 {
			return nil, fmt.Errorf("sentinel %s names unknown master %s:%s", s.sentinels[i].Addr(), hp[0], hp[1])
		}
		views = append(views, s.data[j])
	}
	if len(views) == 0 {
		return nil, errors.New("no sentinel running")
	}
	return views, nil
}
