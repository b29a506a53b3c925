package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/queue"
	"github.com/cronfleet/cronfleet/internal/redisconn"
	"github.com/cronfleet/cronfleet/internal/redistest"
	"github.com/cronfleet/cronfleet/internal/testwait"
)

// The tests in this file run the fleet on the Redis deployments operators scale out to,
// given to the nodes as the URLs the README documents: a Redis Cluster, resharded while the
// fleet runs, and a Sentinel set whose master dies.

const deployJobs = 12

// deployFleet starts three nodes on url with deployJobs jobs every second, each with catch-up
// "all" and overlap "allow": every occurrence must run, once, even when late.
func deployFleet(t *testing.T, url string, rdb redis.UniversalClient) *fleet {
	t.Helper()
	f := newFleetOn(t, url, rdb, recordJobsLease(deployJobs, "* * * * * *", 0, "  catchup = \"all\"\n  overlap = \"allow\"", 3*time.Second))
	for _, n := range []string{"a", "b", "c"} {
		f.start(n)
	}
	testwait.For(t, 20*time.Second, "runs to begin", func() bool { return len(f.events()) > 6*deployJobs })
	return f
}

// checkNoRedisErrors: the nodes followed the deployment's redirections and failovers without
// a script failing on keys of several slots.
func (f *fleet) checkNoRedisErrors(t *testing.T) {
	t.Helper()
	f.logWarnings(t)
	for _, n := range f.nodes {
		for _, bad := range []string{"CROSSSLOT", "MOVED", "ASK ", "TRYAGAIN", "level=ERROR msg=\"run"} {
			if c := strings.Count(n.Log(), bad); c > 0 {
				t.Errorf("node %s logged %q %d times", n.Name, bad, c)
			}
		}
	}
}

// logWarnings logs what the nodes warned of, for the reader of a test's output.
func (f *fleet) logWarnings(t *testing.T) {
	t.Helper()
	for _, n := range f.nodes {
		for l := range strings.Lines(n.Log()) {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				t.Logf("node %s: %s", n.Name, strings.TrimSpace(l))
			}
		}
	}
}

// checkCLI: the fleet commands take the same URL as the nodes: history shows the runs, status
// the three nodes, and pause, resume and trigger act on the job.
func (f *fleet) checkCLI(t *testing.T, env ...string) {
	t.Helper()
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(f.bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("runner %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}
	var runs []struct {
		Occurrence string `json:"occurrence"`
		Status     string `json:"status"`
	}
	if err := json.Unmarshal([]byte(cli("history", "-config", f.conf, "-redis", f.url, "-n", "3", "-json", "job-000")), &runs); err != nil || len(runs) != 3 {
		t.Errorf("runner history -redis %s: %+v, %v; want three runs", f.url, runs, err)
	}
	var st struct {
		Nodes []struct {
			Name  string `json:"name"`
			Alive bool   `json:"alive"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(cli("status", "-config", f.conf, "-redis", f.url, "-json")), &st); err != nil || len(st.Nodes) != len(f.nodes) {
		t.Errorf("runner status -redis %s: %+v, %v; want %d nodes", f.url, st, err, len(f.nodes))
	}
	for _, action := range []string{"pause", "resume", "trigger"} {
		cli(action, "-config", f.conf, "-redis", f.url, "job-001")
	}
}

func TestFleetOnRedisCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	f := deployFleet(t, c.URL(), c.Client(t))
	begun := time.Now()

	// The jobs' agenda shards live on at least two masters: the cluster shares the load.
	owners := map[int][]int{} // master → shards
	shardSlot := map[int]int{}
	for i := range deployJobs {
		s := queue.ShardOf(fmt.Sprintf("job-%03d", i))
		if _, ok := shardSlot[s]; ok {
			continue
		}
		shardSlot[s] = redistest.KeySlot(fmt.Sprintf("{cf:e2e:%d}:agenda", s))
		m := c.SlotOwner(t, shardSlot[s])
		owners[m] = append(owners[m], s)
	}
	if len(owners) < 2 {
		t.Errorf("the jobs' shards all live on one master: %v", owners)
	}
	t.Logf("shards by master: %v", owners)

	// Reshard while the fleet runs: move the slot of every shard of job-000's master to the
	// next master, one at a time, keys and all.
	from := c.SlotOwner(t, shardSlot[queue.ShardOf("job-000")])
	moved := slices.Sorted(slices.Values(owners[from]))
	for _, s := range moved {
		c.MigrateSlot(t, shardSlot[s], (from+1)%3)
	}
	resharded := time.Now()
	for _, s := range moved {
		if got := c.SlotOwner(t, shardSlot[s]); got != (from+1)%3 {
			t.Fatalf("shard %d's slot is on master %d after the migration, want %d", s, got, (from+1)%3)
		}
	}

	start := begun.Add(time.Second).Truncate(time.Second)
	end := resharded.Add(4 * time.Second).Truncate(time.Second)
	f.waitAllStarted(deployJobs, start, end, 40*time.Second)
	checkHealthyRuns(t, f.events(), deployJobs, start, end, false)
	f.checkNoRedisErrors(t)
	f.checkCLI(t)
}

// sentinelFleet is a deployFleet on a new Sentinel set.
func sentinelFleet(t *testing.T) (*redistest.Sentinels, *fleet) {
	t.Helper()
	s := redistest.StartSentinel(t)
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.Name(), SentinelAddrs: s.SentinelAddrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	return s, deployFleet(t, s.URL(), rdb)
}

func TestFleetOnRedisSentinelFailover(t *testing.T) {
	t.Parallel()
	s, f := sentinelFleet(t)

	master := s.Master()
	master.Kill()
	killed := time.Now()
	promoted := s.WaitFailover(t, master, 30*time.Second)
	failedOver := time.Now()
	t.Logf("failover from %s to %s took %v", master.Addr(), promoted.Addr(), failedOver.Sub(killed).Round(time.Millisecond))

	f.checkThrough(t, deployJobs, killed.Add(-2*time.Second).Truncate(time.Second),
		failedOver.Add(6*time.Second).Truncate(time.Second), killed, failedOver.Add(4*time.Second))
	f.logWarnings(t)
	f.checkCLI(t)
}

// TestFleetOnSentinelFailoverToStaleReplica: the replica falls behind (it is frozen) while
// the fleet runs, then the master dies and the sentinels promote the replica, which never saw
// the last seconds of writes. The nodes detect that Redis went back, and nothing runs twice.
func TestFleetOnSentinelFailoverToStaleReplica(t *testing.T) {
	t.Parallel()
	s, f := sentinelFleet(t)

	master := s.Master()
	var replica *redistest.Server
	for _, srv := range s.Servers() {
		if srv != master {
			replica = srv
		}
	}
	// Frozen, and cut off: what the master sends from now on never reaches the replica
	// (what was in flight may still be in its socket).
	replica.Pause()
	if err := master.Client(t).ClientKillByFilter(t.Context(), "TYPE", "replica").Err(); err != nil {
		t.Fatalf("CLIENT KILL TYPE replica: %v", err)
	}
	frozen := time.Now()
	testwait.For(t, 10*time.Second, "two seconds of writes the replica misses", func() bool { return time.Since(frozen) > 2*time.Second })
	master.Kill()
	killed := time.Now()
	replica.Resume()
	if promoted := s.WaitFailover(t, master, 30*time.Second); promoted != replica {
		t.Fatalf("promoted %s, want the replica %s", promoted.Addr(), replica.Addr())
	}
	failedOver := time.Now()

	f.checkThrough(t, deployJobs, frozen.Add(-2*time.Second).Truncate(time.Second),
		failedOver.Add(6*time.Second).Truncate(time.Second), killed, failedOver.Add(4*time.Second))
	f.checkLossLogged(t)
}

// writeTLS writes a CA, a server certificate for 127.0.0.1 and a client certificate, all
// signed by the CA, as PEM files in dir.
func writeTLS(t *testing.T, dir string) (ca, serverCert, serverKey, clientCert, clientKey string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cronfleet test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, kind string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", keyDER)
	}
	serverCert, serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	clientCert, clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return write("ca.pem", "CERTIFICATE", caDER), serverCert, serverKey, clientCert, clientKey
}

// TestFleetOverTLSWithPasswordOutOfArgv: a node reaches a Redis that wants TLS with client
// certificates and a password, through a rediss:// URL, the -redis-tls-* flags and
// -redis-password-file; a fleet command gets the password from CRONFLEET_REDIS_PASSWORD. The
// password is in no argv and no log line.
func TestFleetOverTLSWithPasswordOutOfArgv(t *testing.T) {
	t.Parallel()
	const password = "s3cret-for-the-test"
	dir := t.TempDir()
	ca, cert, key, clientCert, clientKey := writeTLS(t, dir)
	tlsPort, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t, "--tls-port", fmt.Sprint(tlsPort), "--tls-cert-file", cert, "--tls-key-file", key,
		"--tls-ca-cert-file", ca, "--tls-auth-clients", "yes")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	// The password is set once the server is up: the helper's own readiness check has none.
	if err := rdb.ConfigSet(t.Context(), "requirepass", password).Err(); err != nil {
		t.Fatal(err)
	}
	rdb = redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: password})
	t.Cleanup(func() { _ = rdb.Close() })
	pwFile := filepath.Join(dir, "redis-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	url := fmt.Sprintf("rediss://127.0.0.1:%d/0", tlsPort)
	f := newFleetOn(t, url, rdb, recordJobs(2, "* * * * * *", 0, ""))
	tlsFlags := []string{"-redis-tls-ca", ca, "-redis-tls-cert", clientCert, "-redis-tls-key", clientKey}
	n := f.start("a", append(tlsFlags, "-redis-password-file", pwFile)...)
	testwait.For(t, 20*time.Second, "three recorded runs", func() bool { return len(f.history("e2e", "job-000")) >= 3 })

	cmd := exec.Command(f.bin, append(append([]string{"history", "-config", f.conf, "-redis", url}, tlsFlags...), "-n", "1", "job-000")...)
	cmd.Env = append(os.Environ(), "CRONFLEET_REDIS_PASSWORD="+password)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "succeeded") {
		t.Errorf("runner history over TLS with the password from the environment: %v\n%s", err, out)
	}
	// Without the client certificate the server refuses the connection: TLS is in use.
	cmd = exec.Command(f.bin, "history", "-config", f.conf, "-redis", url, "-redis-tls-ca", ca, "-n", "1", "job-000")
	cmd.Env = append(os.Environ(), "CRONFLEET_REDIS_PASSWORD="+password)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("runner history without a client certificate succeeded:\n%s", out)
	}
	if strings.Contains(n.Log(), password) {
		t.Error("the node's log shows the password")
	}
	if args, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n.Pid())); err == nil && strings.Contains(string(args), password) {
		t.Error("the node's argv holds the password")
	}
}

// TestFleetOnRedisClusterFailover: the master that holds job-000's shard dies, and the
// Cluster promotes its replica. The nodes find the new master and run every occurrence once,
// with tokens growing.
func TestFleetOnRedisClusterFailover(t *testing.T) {
	t.Parallel()
	c := redistest.StartClusterWithReplicas(t, 3, 1)
	rdb, _, err := redisconn.Open(redisconn.Settings{URL: c.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	f := deployFleet(t, c.URL(), rdb)

	master := c.SlotOwner(t, redistest.KeySlot(fmt.Sprintf("{cf:e2e:%d}:agenda", queue.ShardOf("job-000"))))
	killed := time.Now()
	promoted := c.KillMaster(t, master)
	failedOver := time.Now()
	t.Logf("failover from node %d to node %d took %v", master, promoted, failedOver.Sub(killed).Round(time.Millisecond))

	f.checkThrough(t, deployJobs, killed.Add(-2*time.Second).Truncate(time.Second),
		failedOver.Add(6*time.Second).Truncate(time.Second), killed, failedOver.Add(4*time.Second))
	f.logWarnings(t)
	f.checkCLI(t)
}
