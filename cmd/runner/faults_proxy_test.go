//go:build faults

package main_test

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// proxy is the suite's TCP fault proxy: it stands between one node and Redis and passes
// the bytes, drops them (a blackhole: connections stay open and nothing arrives, as when a
// network path dies), resets every connection, or delays every chunk. It is written here
// rather than taken from a library because it needs only these four modes, on loopback.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  proxyMode
	delay time.Duration
	conns map[net.Conn]struct{} // open connections, both sides
	wg    sync.WaitGroup
}

type proxyMode int

const (
	pass proxyMode = iota
	blackhole
	reset
	delay
)

// startProxy listens on a free loopback port and forwards to target; the test's cleanup
// closes it.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// URL is the Redis URL that reaches the target through the proxy.
func (p *proxy) URL() string {
	return "redis://127.0.0.1:" + strconv.Itoa(p.ln.Addr().(*net.TCPAddr).Port) + "/0"
}

// set switches the proxy to mode (d: the delay of mode delay). Leaving a blackhole, or
// entering reset, resets the connections open before: bytes were dropped from their
// streams, which cannot be resumed.
func (p *proxy) set(mode proxyMode, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if mode == reset || (p.mode == blackhole && mode != blackhole) {
		for c := range p.conns {
			abort(c)
		}
	}
	p.mode, p.delay = mode, d
}

func (p *proxy) current() (proxyMode, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.delay
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if mode, _ := p.current(); mode == reset {
			abort(c)
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			abort(c)
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, c) })
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

// pipe copies from src to dst as the mode says, until either side closes.
func (p *proxy) pipe(dst, src net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
		_ = src.Close()
		_ = dst.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			mode, d := p.current()
			switch mode {
			case blackhole:
				continue // dropped
			case delay:
				time.Sleep(d) // the fault being injected, not a synchronisation
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, or a reset this proxy caused
		}
	}
}

// abort closes c with a TCP reset, as a dead middlebox or a restarted host answers.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.set(reset, 0)
	p.wg.Wait()
}
