// Package tlsfiles builds a client TLS configuration from the PEM files an operator names:
// the runner's connection to Redis and the http handler take the same three files, and load
// them the same way here.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files names PEM files of a TLS client. All are optional: without CA the system's roots
// verify the server; Cert and Key go together and authenticate the client.
type Files struct {
	CA, Cert, Key string
}

// Any says whether any file is named.
func (f Files) Any() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// Config returns a client configuration of TLS 1.2 or later with f's roots and certificate.
// Its errors name the file at fault.
func (f Files) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", f.CA)
		}
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("a client certificate and its key go together: give both or neither")
	}
	if f.Cert != "" {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s and key %s: %w", f.Cert, f.Key, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
