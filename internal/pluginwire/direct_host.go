package pluginwire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// MaxDirectConns bounds the direct connections a host keeps to one plugin process. Runs
// beyond it go over the Session stream, which multiplexes any number: a burst of hundreds
// of runs sent ahead would otherwise cost a TLS handshake and a socket each, in the
// middle of the burst, to save a few tens of microseconds per run.
const MaxDirectConns = 16

// directPool is the host's end of a plugin process's direct connections: opened on the
// first run, then kept idle between runs. Make it with newDirectPool.
type directPool struct {
	asking chan struct{} // a semaphore held while calling Direct

	mu      sync.Mutex
	state   directState
	cert    *tls.Certificate // the host's, made once: the plugin pins the first one it is sent
	network string
	address string
	tls     *tls.Config
	idle    []*hostConn // last in, first out: the warmest first
	open    int         // connections idle or in use
	closed  bool
}

func newDirectPool() *directPool {
	return &directPool{asking: make(chan struct{}, 1)}
}

type directState int

const (
	directUnknown     directState = iota // Direct not asked yet
	directReady                          // connections may be opened
	directUnavailable                    // the plugin has none (or they failed): use Session
)

// hostConn is one direct connection.
type hostConn struct {
	conn *tls.Conn
	id   uint64 // the plugin's name for it, from its hello
	last uint64 // the id of the last run sent
}

// dialTimeout bounds asking for direct connections and opening one.
const dialTimeout = 10 * time.Second

// cancelTimeout bounds the CancelDirect call that cancels a run the host gave up on: a
// plugin that cannot answer within the host's default health-check bound is as good as
// hung.
const cancelTimeout = 2 * time.Second

// ErrCancelLost marks a run whose ctx ended but whose cancellation did not reach the
// plugin (CancelDirect failed), so that its handler may still be running: the caller
// should stop the plugin process, which cancels it. The error also carries the Canceled
// or DeadlineExceeded status of the ctx.
//
// Why not watch the connection in the plugin instead, for the host closing it: a watch
// needs a timer or a reader goroutine per run, and either wakes another thread, which
// costs a third of a direct run's latency. A lost CancelDirect is rare (the plugin is
// dying, or too busy to answer in a second), and a restart is what a plugin that ignores
// cancellation gets anyway.
var ErrCancelLost = errors.New("pluginwire: the run's cancellation did not reach the plugin")

// take returns an idle connection or a new one, or nil when the run must go another way.
func (p *directPool) take(ctx context.Context, c pb.HandlerClient) *hostConn {
	if !p.ready(ctx, c) {
		return nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	if n := len(p.idle); n > 0 {
		hc := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return hc
	}
	if p.open >= MaxDirectConns {
		p.mu.Unlock()
		return nil
	}
	p.open++
	p.mu.Unlock()
	hc, err := p.dial(ctx)
	if err != nil {
		p.mu.Lock()
		p.open--
		if ctx.Err() == nil {
			// The plugin offered connections it does not serve: stop trying. The
			// session still works, or fails for the reason this did.
			p.state = directUnavailable
		}
		p.mu.Unlock()
		return nil
	}
	return hc
}

// ready asks the plugin for direct connections on first use; it reports whether they
// may be used. A caller whose ctx ends while another asks goes its own way.
func (p *directPool) ready(ctx context.Context, c pb.HandlerClient) bool {
	if st := p.currentState(); st != directUnknown {
		return st == directReady
	}
	select {
	case p.asking <- struct{}{}:
		defer func() { <-p.asking }()
	case <-ctx.Done():
		return false
	}
	if st := p.currentState(); st != directUnknown {
		return st == directReady
	}
	err := p.ask(ctx, c)
	if err != nil && ctx.Err() != nil {
		return false // ask again on the next run
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		// UNIMPLEMENTED (a plugin in another language, or built with an older
		// plugin/sdk), or a plugin that cannot listen: the session is as correct.
		p.state = directUnavailable
		return false
	}
	p.state = directReady
	return true
}

func (p *directPool) currentState() directState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// ask calls Direct and sets up the connections' TLS config. The certificate is made once
// and sent again if a caller's ctx ended mid-call: the plugin may have pinned it.
func (p *directPool) ask(ctx context.Context, c pb.HandlerClient) error {
	if p.cert == nil {
		cert, err := newCertificate()
		if err != nil {
			return err
		}
		p.cert = &cert
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	res, err := c.Direct(ctx, &pb.DirectRequest{HostCertificate: p.cert.Certificate[0]})
	if err != nil {
		return err
	}
	if res.GetNetwork() != "unix" || res.GetAddress() == "" || len(res.GetPluginCertificate()) == 0 {
		return fmt.Errorf("pluginwire: direct connections offered on %q %q, want a unix socket and a certificate", res.GetNetwork(), res.GetAddress())
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{*p.cert},
		// The plugin's certificate is checked by pinning its bytes, below; there is no
		// CA and no name to verify.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: pinned(res.GetPluginCertificate()),
		MinVersion:            tls.VersionTLS13,
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tls, p.network, p.address = cfg, res.GetNetwork(), res.GetAddress()
	return nil
}

// dial opens a connection and reads the plugin's hello, within dialTimeout and ctx.
func (p *directPool) dial(ctx context.Context) (*hostConn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, p.network, p.address)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, p.tls)
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	var hello pb.DirectHello
	err = c.HandshakeContext(ctx)
	if err == nil {
		err = readFrame(c, &hello)
	}
	if !stop() || err != nil {
		_ = raw.Close()
		return nil, errors.Join(err, ctx.Err())
	}
	return &hostConn{conn: c, id: hello.GetConnection()}, nil
}

// put takes hc back: idle for the next run when reusable, else closed.
func (p *directPool) put(hc *hostConn, reusable bool) {
	p.mu.Lock()
	if reusable && !p.closed {
		p.idle = append(p.idle, hc)
		p.mu.Unlock()
		return
	}
	p.open--
	p.mu.Unlock()
	_ = hc.conn.Close()
}

// close closes the idle connections; those in use are closed when their runs end. It also
// removes the plugin's socket directory, which a plugin that crashed or was killed left
// behind: the host calls it once the process is gone.
func (p *directPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.open -= len(idle)
	address := p.address
	p.mu.Unlock()
	for _, hc := range idle {
		_ = hc.conn.Close()
	}
	removeSocketDir(address)
}

// removeSocketDir removes the socket at address and its directory, if they have the shape
// the plugin side makes: the address came from the plugin, and the host removes nothing
// else on its word (no symlink, nothing but a socket, and its directory only if empty).
func removeSocketDir(address string) {
	dir := filepath.Dir(address)
	if !filepath.IsAbs(address) || filepath.Clean(address) != address ||
		filepath.Base(address) != socketName || !strings.HasPrefix(filepath.Base(dir), socketDirPrefix) {
		return
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return
	}
	if fi, err := os.Lstat(address); err == nil && fi.Mode().Type() == os.ModeSocket {
		_ = os.Remove(address)
	}
	_ = os.Remove(dir) // fails unless empty
}

// run sends req on hc and reads its events until its result, on the caller's goroutine.
// Errors are gRPC statuses, as on the session: the plugin's own (ABORTED for a run it
// refused, or when it had closed the connection before the run was sent), Canceled or
// DeadlineExceeded when ctx ended first (the run is then cancelled in the plugin with
// CancelDirect; wrapped in ErrCancelLost when that failed), ResourceExhausted for a
// request over the size limit, Unavailable when the connection broke.
func (p *directPool) run(ctx context.Context, c pb.HandlerClient, hc *hostConn, req *pb.RunRequest, output func(string)) (*pb.RunResult, error) {
	if ctx.Err() != nil {
		p.put(hc, true) // nothing was sent
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	id := hc.last + 1
	frame, err := encodeFrame(runMessage(ctx, id, req))
	if err != nil {
		p.put(hc, true) // nothing was sent
		code := codes.Internal
		if errors.Is(err, errTooLarge) {
			code = codes.ResourceExhausted
		}
		return nil, status.Error(code, fmt.Sprintf("pluginwire: run request: %v", err))
	}
	hc.last = id
	// Unblock the reads and writes below when ctx ends. A connection on which this fired
	// is not reused: its deadline is in the past, and its run may still be going.
	stop := context.AfterFunc(ctx, func() { _ = hc.conn.SetDeadline(time.Unix(1, 0)) })
	// failed closes hc after err. A request that was not sent (its write failed, so its
	// last TLS record did not get through) cannot have reached the handler: there is
	// nothing to cancel, and while ctx lives the plugin closed the connection because it
	// is exiting, so the run may go to a fresh process, as a run the plugin refused.
	failed := func(err error, sent bool) (*pb.RunResult, error) {
		stop()
		p.put(hc, false)
		switch {
		case ctx.Err() != nil && sent:
			cctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
			_, cerr := c.CancelDirect(cctx, &pb.CancelDirectRequest{Connection: hc.id, Id: id})
			cancel()
			st := status.FromContextError(ctx.Err()).Err()
			if cerr != nil {
				return nil, fmt.Errorf("%w (%v): %w", ErrCancelLost, cerr, st)
			}
			return nil, st
		case ctx.Err() != nil:
			return nil, status.FromContextError(ctx.Err()).Err()
		case !sent:
			return nil, status.Error(codes.Aborted, fmt.Sprintf("pluginwire: direct connection closed before the run was sent: %v", err))
		}
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("pluginwire: direct connection: %v", err))
	}
	if _, err := hc.conn.Write(frame); err != nil {
		return failed(err, false)
	}
	for {
		var ev pb.SessionEvent
		if err := readFrame(hc.conn, &ev); err != nil {
			return failed(err, true)
		}
		if ev.GetId() != id {
			return failed(fmt.Errorf("event for run %d during run %d", ev.GetId(), id), true)
		}
		switch e := ev.Event.(type) {
		case *pb.SessionEvent_Output:
			if output != nil {
				output(e.Output)
			}
		case *pb.SessionEvent_Result:
			p.put(hc, stop())
			return e.Result, nil
		case *pb.SessionEvent_Error:
			p.put(hc, stop())
			return nil, runErrorStatus(e.Error)
		}
	}
}
