package pluginwire

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cronfleet/cronfleet/internal/pluginwire/pb"
)

// directServer is the plugin's end of its direct connections: a listener opened on the
// host's first Direct call, and a goroutine per connection that reads a run, runs it and
// writes its events. GRPCPlugin.Close stops it; its goroutines are its own.
type directServer struct {
	mu     sync.Mutex
	impl   Handler
	ln     net.Listener
	dir    string
	resp   *pb.DirectResponse
	host   []byte                 // the certificate the host presents
	ctx    context.Context        // the runs' parent; cancelled by close
	cancel context.CancelFunc     // cancels ctx
	conns  map[uint64]*directConn // the connections being served
	next   uint64
	closed bool
	wg     sync.WaitGroup
}

// directConn is the plugin's state of one direct connection.
type directConn struct {
	id   uint64
	conn net.Conn

	mu        sync.Mutex
	last      uint64             // the id of the last run read
	running   context.CancelFunc // the run in progress, if any (its id is last)
	cancelled uint64             // a run cancelled before it was read
}

// handshakeTimeout bounds a direct connection's TLS handshake and hello on both ends.
const handshakeTimeout = 10 * time.Second

// The socket's directory and name: the host removes a directory of this shape that a
// crashed plugin left behind.
const (
	socketDirPrefix = "cronfleet-direct-"
	socketName      = "runs.sock"
)

// open starts listening, once; later calls return the same answer to the same host.
func (d *directServer) open(impl Handler, hostCert []byte) (*pb.DirectResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return nil, status.Error(codes.Unavailable, "plugin is shutting down")
	case d.resp != nil && !bytes.Equal(hostCert, d.host):
		return nil, status.Error(codes.FailedPrecondition, "direct connections are open already, for another host certificate")
	case d.resp != nil:
		return d.resp, nil
	case len(hostCert) == 0:
		return nil, status.Error(codes.InvalidArgument, "no host certificate")
	}
	cert, err := newCertificate()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "direct connections: %v", err)
	}
	// A directory of our own, private to this user: the socket is not reachable by
	// others even before TLS refuses them. PLUGIN_UNIX_SOCKET_DIR is where go-plugin puts
	// its own socket, so an operator who moved that moved this too.
	dir, err := os.MkdirTemp(os.Getenv(plugin.EnvUnixSocketDir), socketDirPrefix+"*")
	if err != nil {
		return nil, status.Errorf(codes.Internal, "direct connections: %v", err)
	}
	path := filepath.Join(dir, socketName)
	ln, err := net.Listen("unix", path)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, status.Errorf(codes.Internal, "direct connections: %v", err)
	}
	d.impl, d.ln, d.dir, d.host = impl, ln, dir, bytes.Clone(hostCert)
	d.resp = &pb.DirectResponse{Network: "unix", Address: path, PluginCertificate: cert.Certificate[0]}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.conns = map[uint64]*directConn{}
	cfg := &tls.Config{
		Certificates:          []tls.Certificate{cert},
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: pinned(d.host),
		MinVersion:            tls.VersionTLS13,
	}
	d.wg.Go(func() { d.accept(cfg) })
	return d.resp, nil
}

// accept serves connections until the listener is closed.
func (d *directServer) accept(cfg *tls.Config) {
	for {
		c, err := d.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors, say: the host's dial times out and it uses
			// Session instead. Try again shortly rather than spin.
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-t.C:
			case <-d.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		d.wg.Go(func() { d.serve(tls.Server(c, cfg)) })
	}
}

// serve runs the runs sent on c, one at a time, on this goroutine.
func (d *directServer) serve(c *tls.Conn) {
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := c.HandshakeContext(d.ctx); err != nil {
		return
	}
	dc := d.register(c)
	if dc == nil {
		return
	}
	defer d.unregister(dc)
	if err := writeFrame(c, &pb.DirectHello{Connection: dc.id}); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	for {
		var m pb.SessionRequest
		if err := readFrame(c, &m); err != nil {
			return
		}
		req := m.GetRun()
		if req == nil {
			continue // a message of a later protocol revision
		}
		id := m.GetId()
		ctx, cancel := runContext(d.ctx, m.GetDeadline())
		dc.start(id, cancel)
		res, err := runImpl(ctx, d.impl, req, func(line string) {
			_ = writeFrame(c, &pb.SessionEvent{Id: id, Event: &pb.SessionEvent_Output{Output: line}})
		})
		dc.finish()
		cancel()
		frame, ferr := encodeFrame(endEvent(id, res, err))
		if errors.Is(ferr, errTooLarge) {
			frame, ferr = encodeFrame(endEvent(id, nil, status.Error(codes.ResourceExhausted, "run result: "+ferr.Error())))
		}
		if ferr != nil {
			return
		}
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}

// register records a new connection; nil once closed.
func (d *directServer) register(c net.Conn) *directConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.next++
	dc := &directConn{id: d.next, conn: c}
	d.conns[dc.id] = dc
	return dc
}

func (d *directServer) unregister(dc *directConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.conns, dc.id)
}

// start records run id as running under cancel, or cancels it at once when its
// cancellation arrived first.
func (dc *directConn) start(id uint64, cancel context.CancelFunc) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	dc.last = id
	if dc.cancelled == id {
		cancel()
		return
	}
	dc.running = cancel
}

func (dc *directConn) finish() {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	dc.running = nil
}

// cancelRun cancels run id: the one running, or one not read yet. The host sends nothing
// after a run it cancels, so one remembered cancellation is enough.
func (d *directServer) cancelRun(conn, id uint64) {
	d.mu.Lock()
	dc := d.conns[conn]
	d.mu.Unlock()
	if dc == nil {
		return // closed: its goroutine returned, and its run with it
	}
	dc.mu.Lock()
	defer dc.mu.Unlock()
	switch {
	case id == dc.last && dc.running != nil:
		dc.running()
	case id > dc.last:
		dc.cancelled = id
	}
}

// close stops listening, cancels the runs, closes the connections and waits for their
// goroutines.
func (d *directServer) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	opened := d.ln != nil
	if opened {
		_ = d.ln.Close()
		d.cancel()
		for _, dc := range d.conns {
			_ = dc.conn.Close()
		}
	}
	d.mu.Unlock()
	d.wg.Wait()
	if opened {
		_ = os.RemoveAll(d.dir)
	}
}
