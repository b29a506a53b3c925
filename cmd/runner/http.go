package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/api"
)

// httpFlags say whether and how a node serves its dashboard, JSON API and metrics.
type httpFlags struct {
	addr     string
	tokens   string
	tlsCert  string
	tlsKey   string
	insecure bool
}

func (f *httpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "http", "", "serve the dashboard, JSON API and /metrics on HOST:PORT (a port alone, :PORT, is loopback); off by default")
	fs.StringVar(&f.tokens, "http-tokens", "", "file of bearer tokens, one per line: ROLE NAME SECRET, ROLE read or operate (also $"+api.TokensEnv+"); required off loopback")
	fs.StringVar(&f.tlsCert, "http-tls-cert", "", "PEM certificate to serve HTTPS with")
	fs.StringVar(&f.tlsKey, "http-tls-key", "", "PEM key of -http-tls-cert")
	fs.BoolVar(&f.insecure, "http-insecure", false, "serve plain HTTP off loopback (behind a TLS-terminating proxy): tokens travel in clear text")
}

// listen checks the flags and takes the port; it returns a nil listener when -http is not
// given. Nothing is served before the run group starts the server.
func (f *httpFlags) listen() (net.Listener, api.Config, error) {
	if f.addr == "" {
		return nil, api.Config{}, nil
	}
	tokens, err := api.LoadTokens(f.tokens)
	if err != nil {
		return nil, api.Config{}, err
	}
	cfg := api.Config{Addr: f.addr, Tokens: tokens, TLSCert: f.tlsCert, TLSKey: f.tlsKey, Insecure: f.insecure}
	ln, err := api.Listen(cfg)
	if err != nil {
		return nil, api.Config{}, err
	}
	return ln, cfg, nil
}

// url is where a person points a browser.
func (f *httpFlags) url(ln net.Listener) string {
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s/", scheme, ln.Addr())
}

// ping is the readiness check: Redis answers within a short time.
func ping(ctx context.Context, rdb redis.UniversalClient) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}
