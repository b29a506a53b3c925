package pluginwire

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// runFunc is a Handler whose runs call f.
type runFunc func(ctx context.Context, req *pb.RunRequest, output func(string)) (*pb.RunResult, error)

func (f runFunc) Schema(context.Context) (*pb.SchemaResponse, error) {
	return &pb.SchemaResponse{}, nil
}
func (f runFunc) Check(context.Context, *pb.CheckRequest) (*pb.CheckResponse, error) {
	return &pb.CheckResponse{}, nil
}
func (f runFunc) Run(ctx context.Context, req *pb.RunRequest, output func(string)) (*pb.RunResult, error) {
	return f(ctx, req, output)
}

// serveDirect serves f in process and returns the host's client and the plugin's side.
func serveDirect(t *testing.T, f runFunc) (*client, *GRPCPlugin) {
	t.Helper()
	p := &GRPCPlugin{Impl: f}
	return serve(t, p, p), p
}

// serve serves gp, the plugin p or one embedding it, and returns the host's client.
func serve(t *testing.T, gp plugin.Plugin, p *GRPCPlugin) *client {
	t.Helper()
	rpc, _ := plugin.TestPluginGRPCConn(t, false, plugin.PluginSet{PluginName: gp})
	t.Cleanup(p.Close)
	t.Cleanup(func() { _ = rpc.Close() })
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(*client)
	t.Cleanup(c.Close)
	return c
}

func ok(context.Context, *pb.RunRequest, func(string)) (*pb.RunResult, error) {
	return &pb.RunResult{Message: "ok"}, nil
}

// TestDirectReusesItsConnection: runs one after another share one connection, so a run
// costs no handshake.
func TestDirectReusesItsConnection(t *testing.T) {
	c, p := serveDirect(t, ok)
	for range 20 {
		if res, err := c.Run(t.Context(), &pb.RunRequest{}, nil); err != nil || res.GetMessage() != "ok" {
			t.Fatalf("run: %v, %v", res, err)
		}
	}
	if n := DirectConns(p); n != 1 {
		t.Errorf("20 runs in a row opened %d direct connections, want 1", n)
	}
}

// TestDirectCancelBeforeTheRunIsRead: CancelDirect can overtake its run, which travels on
// another connection; the run must then not start. A cancellation of a run that ended is
// ignored: it must not cancel the next one.
func TestDirectCancelBeforeTheRunIsRead(t *testing.T) {
	d := &directServer{conns: map[uint64]*directConn{}}
	dc := d.register(nil)

	d.cancelRun(dc.id, 1) // before run 1 was read
	ctx, cancel := context.WithCancel(t.Context())
	dc.start(1, cancel)
	if ctx.Err() == nil {
		t.Fatal("run 1 started although its cancellation came first")
	}
	dc.finish()

	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	dc.start(2, cancel)
	d.cancelRun(dc.id, 1) // late: run 1 ended
	if ctx.Err() != nil {
		t.Fatal("a late cancellation of run 1 cancelled run 2")
	}
	d.cancelRun(dc.id, 2)
	if ctx.Err() == nil {
		t.Fatal("run 2 was not cancelled")
	}
	d.cancelRun(dc.id+1, 3) // an unknown connection: nothing to do
}

// TestDirectRefusesOtherCertificates: each end accepts only the certificate the other
// sent over go-plugin's authenticated connection.
func TestDirectRefusesOtherCertificates(t *testing.T) {
	c, _ := serveDirect(t, ok)
	if _, err := c.Run(t.Context(), &pb.RunRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	pool := c.direct
	if pool.state != directReady {
		t.Fatal("the run did not open direct connections")
	}
	stranger, err := newCertificate()
	if err != nil {
		t.Fatal(err)
	}

	// A client with a certificate of its own: the plugin ends the handshake with an alert.
	cfg := pool.tls.Clone()
	cfg.Certificates = []tls.Certificate{stranger}
	other := &directPool{network: pool.network, address: pool.address, tls: cfg}
	hc, err := other.dial(t.Context())
	if err == nil {
		_ = hc.conn.Close()
		t.Fatal("the plugin accepted a client certificate it was not given")
	}
	if oe := (*net.OpError)(nil); !errors.As(err, &oe) || oe.Op != "remote error" {
		t.Fatalf("dial with a stranger's certificate: %v, want the plugin's TLS alert", err)
	}

	// A plugin presenting another certificate: the host refuses it.
	cfg = pool.tls.Clone()
	cfg.VerifyPeerCertificate = pinned(stranger.Certificate[0])
	other = &directPool{network: pool.network, address: pool.address, tls: cfg}
	if hc, err := other.dial(t.Context()); !errors.Is(err, errNotPinned) {
		if hc != nil {
			_ = hc.conn.Close()
		}
		t.Fatalf("dial to a plugin with an unpinned certificate: %v, want %v", err, errNotPinned)
	}
}

// TestDirectConnectionLostMidRun: a connection that breaks while its run is going is the
// plugin failing, Unavailable, as a session that breaks.
func TestDirectConnectionLostMidRun(t *testing.T) {
	started := make(chan struct{})
	c, p := serveDirect(t, func(ctx context.Context, _ *pb.RunRequest, _ func(string)) (*pb.RunResult, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Run(t.Context(), &pb.RunRequest{}, nil)
		errc <- err
	}()
	<-started
	p.direct.mu.Lock()
	for _, dc := range p.direct.conns {
		_ = dc.conn.Close()
	}
	p.direct.mu.Unlock()
	if err := <-errc; status.Code(err) != codes.Unavailable {
		t.Errorf("run on a broken connection: %v, want code Unavailable", err)
	}
}

// TestDirectCloseCancelsRuns: the plugin's Close cancels the runs on its connections and
// waits for them; the host's runs end.
func TestDirectCloseCancelsRuns(t *testing.T) {
	started := make(chan struct{})
	handlerErr := make(chan error, 1)
	c, p := serveDirect(t, func(ctx context.Context, _ *pb.RunRequest, _ func(string)) (*pb.RunResult, error) {
		close(started)
		<-ctx.Done()
		handlerErr <- ctx.Err()
		return nil, ctx.Err()
	})
	runErr := make(chan error, 1)
	go func() {
		res, err := c.Run(t.Context(), &pb.RunRequest{}, nil)
		if err == nil && !res.GetHasError() {
			err = errors.New("the run succeeded")
		}
		runErr <- err
	}()
	<-started
	p.Close()
	if err := <-handlerErr; !errors.Is(err, context.Canceled) {
		t.Errorf("handler's ctx: %v, want context.Canceled", err)
	}
	if err := <-runErr; err == nil {
		t.Error("the host's run ended well although the plugin closed")
	}
	if _, err := os.Stat(p.direct.dir); !os.IsNotExist(err) {
		t.Errorf("socket directory left behind: %v", err)
	}
}

// TestDirectFallsBackToTheSession: when the direct socket cannot be reached, the run goes
// over the session, and later runs do not try the socket again.
func TestDirectFallsBackToTheSession(t *testing.T) {
	c, p := serveDirect(t, ok)
	if _, err := c.Run(t.Context(), &pb.RunRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	// A second, busy connection is needed to make the pool dial: hold the first.
	hc := c.direct.take(t.Context(), c.c)
	if hc == nil {
		t.Fatal("no idle direct connection")
	}
	defer c.direct.put(hc, true)
	if err := p.direct.ln.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if res, err := c.Run(ctx, &pb.RunRequest{}, nil); err != nil || res.GetMessage() != "ok" {
		t.Fatalf("run with the socket gone: %v, %v", res, err)
	}
	if c.direct.state != directUnavailable {
		t.Error("the pool did not give up on the socket")
	}
}

// TestDirectClosedBeforeTheRun: a connection the plugin closed before the run was sent
// (it is exiting) did not deliver the run, which may go to a fresh process: Aborted, as a
// run the plugin refused.
func TestDirectClosedBeforeTheRun(t *testing.T) {
	c, p := serveDirect(t, ok)
	if _, err := c.Run(t.Context(), &pb.RunRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	p.direct.mu.Lock()
	for _, dc := range p.direct.conns {
		_ = dc.conn.Close()
	}
	p.direct.mu.Unlock()
	if _, err := c.Run(t.Context(), &pb.RunRequest{}, nil); status.Code(err) != codes.Aborted {
		t.Errorf("run on a connection the plugin closed: %v, want code Aborted", err)
	}
}

// lostCancel serves a plugin whose CancelDirect fails, as when the call times out.
type lostCancel struct{ GRPCPlugin }

func (p *lostCancel) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterHandlerServer(s, &lostCancelServer{server{impl: p.Impl, direct: &p.direct}})
	return nil
}

type lostCancelServer struct{ server }

func (*lostCancelServer) CancelDirect(context.Context, *pb.CancelDirectRequest) (*pb.CancelDirectResponse, error) {
	return nil, status.Error(codes.Unavailable, "lost")
}

// TestDirectLostCancelIsReported: when CancelDirect fails, the run's handler may go on, so
// the host's error says so (for the caller to stop the process), besides the ctx's status.
func TestDirectLostCancelIsReported(t *testing.T) {
	started := make(chan struct{})
	p := &lostCancel{GRPCPlugin{Impl: runFunc(func(ctx context.Context, _ *pb.RunRequest, _ func(string)) (*pb.RunResult, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})}}
	c := serve(t, p, &p.GRPCPlugin)

	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, &pb.RunRequest{}, nil)
		runErr <- err
	}()
	<-started
	cancel()
	if err := <-runErr; !errors.Is(err, ErrCancelLost) || status.Code(err) != codes.Canceled {
		t.Errorf("host: %v, want ErrCancelLost with code Canceled", err)
	}
}

// TestDirectOversizedMessages: a request or a result over the 4 MiB limit fails its run
// with ResourceExhausted, as gRPC does, and the connection carries the next run.
func TestDirectOversizedMessages(t *testing.T) {
	big := strings.Repeat("x", maxFrame)
	c, p := serveDirect(t, func(_ context.Context, req *pb.RunRequest, _ func(string)) (*pb.RunResult, error) {
		if req.GetJob() == "big result" {
			return &pb.RunResult{Output: big}, nil
		}
		return &pb.RunResult{Message: "ok"}, nil
	})
	for _, req := range []*pb.RunRequest{{Job: "big request", Settings: []byte(big)}, {Job: "big result"}} {
		if _, err := c.Run(t.Context(), req, nil); status.Code(err) != codes.ResourceExhausted {
			t.Errorf("%s: %v, want code ResourceExhausted", req.GetJob(), err)
		}
		if res, err := c.Run(t.Context(), &pb.RunRequest{}, nil); err != nil || res.GetMessage() != "ok" {
			t.Fatalf("run after %s: %v, %v", req.GetJob(), res, err)
		}
	}
	if n := DirectConns(p); n != 1 {
		t.Errorf("opened %d direct connections, want 1: an oversized message must not cost the connection", n)
	}
}

// TestDirectAskAgain: a host that asks again (its first caller's ctx ended mid-call, after
// the plugin had answered) is answered again: it sends the same certificate.
func TestDirectAskAgain(t *testing.T) {
	c, _ := serveDirect(t, ok)
	for i := range 2 {
		if err := c.direct.ask(t.Context(), c.c); err != nil {
			t.Fatalf("ask %d: %v", i+1, err)
		}
	}
}

// TestDirectHostRemovesLeftSocket: the plugin's socket directory, left behind by a plugin
// that crashed, is removed when the host closes its side, after the process is gone.
func TestDirectHostRemovesLeftSocket(t *testing.T) {
	c, _ := serveDirect(t, ok)
	if _, err := c.Run(t.Context(), &pb.RunRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(c.direct.address)
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("socket directory still there after the host closed: %v", err)
	}
}

// TestDirectEndedCtxSendsNothing: a run whose ctx ended before it was sent, or while it
// waited for another caller to open the direct connections, reaches no handler, by no path.
func TestDirectEndedCtxSendsNothing(t *testing.T) {
	var calls atomic.Int32
	c, p := serveDirect(t, func(context.Context, *pb.RunRequest, func(string)) (*pb.RunResult, error) {
		calls.Add(1)
		return &pb.RunResult{Message: "ok"}, nil
	})
	ended, cancel := context.WithCancel(t.Context())
	cancel()

	// Waiting for the Direct call another caller makes.
	c.direct.asking <- struct{}{}
	if _, err := c.Run(ended, &pb.RunRequest{}, nil); status.Code(err) != codes.Canceled {
		t.Errorf("run waiting to ask: %v, want code Canceled", err)
	}
	<-c.direct.asking

	// With a connection ready.
	if _, err := c.Run(t.Context(), &pb.RunRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := c.Run(ended, &pb.RunRequest{}, nil); status.Code(err) != codes.Canceled {
			t.Errorf("run with an ended ctx: %v, want code Canceled", err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want once: runs with an ended ctx were sent", n)
	}
	if n := DirectConns(p); n != 1 {
		t.Errorf("opened %d direct connections, want 1: a run not sent must not cost its connection", n)
	}
}

// TestRemoveSocketDir: the host removes a socket directory of the plugin's shape, and
// nothing else the plugin's address could name.
func TestRemoveSocketDir(t *testing.T) {
	base := t.TempDir()
	mkSocket := func(dir string) string {
		t.Helper()
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, socketName)
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		_ = ln.Close()
		return path
	}
	exists := func(path string) bool {
		_, err := os.Lstat(path)
		return err == nil
	}

	good := mkSocket(filepath.Join(base, socketDirPrefix+"good"))
	removeSocketDir(good)
	if exists(filepath.Dir(good)) {
		t.Error("the plugin's socket directory was left")
	}

	// A symlink of the right name to another directory: not followed.
	target := mkSocket(filepath.Join(base, "elsewhere"))
	link := filepath.Join(base, socketDirPrefix+"link")
	if err := os.Symlink(filepath.Dir(target), link); err != nil {
		t.Fatal(err)
	}
	removeSocketDir(filepath.Join(link, socketName))
	if !exists(target) {
		t.Error("removed a socket through a symlinked directory")
	}

	// A regular file where the socket should be: kept, and so is its directory.
	dir := filepath.Join(base, socketDirPrefix+"file")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, socketName)
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	removeSocketDir(file)
	if !exists(file) {
		t.Error("removed a regular file")
	}

	// Unclean or relative addresses: refused.
	for _, addr := range []string{
		filepath.Join(base, socketDirPrefix+"x", "..", "elsewhere", socketName),
		socketDirPrefix + "rel/" + socketName,
	} {
		removeSocketDir(addr)
	}
	if !exists(target) {
		t.Error("removed a socket named by an unclean address")
	}
}
