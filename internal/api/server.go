package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleet"
	"github.com/cronfleet/cronfleet/internal/queue"
)

// Config says how a node serves HTTP.
type Config struct {
	// Addr is where to listen, host:port; a port alone (":7070") listens on loopback.
	Addr string
	// Tokens are the bearer tokens accepted; none is allowed on loopback only.
	Tokens []Token
	// TLSCert and TLSKey are PEM files to serve HTTPS with; both or neither.
	TLSCert, TLSKey string
	// Insecure allows plain HTTP on an address other than loopback.
	Insecure bool
	// Node names the serving node on its pages.
	Node string
	// Version is the runner's version, shown on the pages.
	Version string
}

// Listen checks cfg's security rules against the address it names and listens there:
// anywhere but loopback takes tokens, and TLS or Insecure.
func Listen(cfg Config) (net.Listener, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("-http %q: want HOST:PORT or :PORT: %w", cfg.Addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, port)
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("-http-tls-cert and -http-tls-key go together")
	}
	if !isLoopback(host) {
		if len(cfg.Tokens) == 0 {
			return nil, fmt.Errorf("-http %s is not a loopback address: give bearer tokens (-http-tokens FILE or $%s) so that not everyone who reaches it can steer the fleet", cfg.Addr, TokensEnv)
		}
		if cfg.TLSCert == "" && !cfg.Insecure {
			return nil, fmt.Errorf("-http %s is not a loopback address: give -http-tls-cert and -http-tls-key, or -http-insecure to send tokens in clear text (behind a TLS proxy)", cfg.Addr)
		}
	}
	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("-http-tls-cert %s and -http-tls-key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-http: %w", err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	return ln, nil
}

// isLoopback reports whether host names only this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Ready reports whether the node can serve the fleet: Redis answers and a job set is
// loaded. A nil error means ready.
type Ready func(ctx context.Context) error

// OutputReader reads a run's output as its node streams it to Redis; *queue.Queue
// implements it.
type OutputReader interface {
	ReadOutput(ctx context.Context, occurrence, after string, block time.Duration) (queue.OutputChunk, error)
}

// maxWaits is how many output reads may wait for new lines at once; more readers poll.
const maxWaits = 4

// Server serves one node's HTTP.
type Server struct {
	fleet   *fleet.Fleet
	ready   Ready
	metrics http.Handler
	output  OutputReader
	// waits bounds the output reads that wait for lines at once: each holds one of the
	// node's Redis connections, which the node's own claims need.
	waits   chan struct{}
	cfg     Config
	log     *slog.Logger
	pages   *pages
	handler http.Handler
}

// Deps are what a Server serves.
type Deps struct {
	// Fleet reads and steers the fleet.
	Fleet *fleet.Fleet
	// Ready is the readiness check of /readyz.
	Ready Ready
	// Metrics serves /metrics (promhttp over the node's registry).
	Metrics http.Handler
	// Output reads runs' live output (*queue.Queue).
	Output OutputReader
	// Logger receives the server's errors; nil discards them.
	Logger *slog.Logger
}

// New returns a Server for deps, configured by cfg.
func New(deps Deps, cfg Config) (*Server, error) {
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{fleet: deps.Fleet, ready: deps.Ready, metrics: deps.Metrics, output: deps.Output,
		waits: make(chan struct{}, maxWaits), cfg: cfg, log: log}
	p, err := newPages()
	if err != nil {
		return nil, err
	}
	s.pages = p
	s.handler = s.routes()
	return s, nil
}

// Handler is the server's whole HTTP handler, for tests that serve it themselves.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves ln until ctx ends, then stops within a few seconds: requests in flight may
// finish, and long polls of live output are ended.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}
