package httphandler

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cronfleet/cronfleet/plugin/sdk"
)

// OutputLimit is how many bytes of the response body a Result keeps.
const OutputLimit = 4 << 10

// DefaultTimeout bounds a request whose settings name no timeout.
const DefaultTimeout = 30 * time.Second

// Metadata keys of a Result.
const (
	// StatusCodeKey holds the response's status code, e.g. "200".
	StatusCodeKey = "status_code"
	// TruncatedKey is "true" when the body was longer than OutputLimit.
	TruncatedKey = "body_truncated"
)

// Request headers the handler sets on every request; see the package doc.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderJob            = "X-Cronfleet-Job"
	HeaderAttempt        = "X-Cronfleet-Attempt"
	HeaderFencingToken   = "X-Cronfleet-Fencing-Token"
	HeaderScheduledAt    = "X-Cronfleet-Scheduled-At"
)

// ScheduledAtLayout formats the X-Cronfleet-Scheduled-At header.
const ScheduledAtLayout = "2006-01-02T15:04:05.000Z07:00"

// reserved are the headers a job may not set, canonicalised.
var reserved = []string{HeaderIdempotencyKey, HeaderJob, HeaderAttempt, HeaderFencingToken, HeaderScheduledAt}

// Settings is the http handler's settings block.
type Settings struct {
	Method                string            `json:"method"`
	URL                   string            `json:"url"`
	Headers               map[string]string `json:"headers"`
	Body                  string            `json:"body"`
	ExpectStatus          []int             `json:"expect_status"`
	Timeout               string            `json:"timeout"`
	TLSCAFile             string            `json:"tls_ca_file"`
	TLSCertFile           string            `json:"tls_cert_file"`
	TLSKeyFile            string            `json:"tls_key_file"`
	TLSInsecureSkipVerify bool              `json:"tls_insecure_skip_verify"`
}

// New returns the http handler.
func New() sdk.Handler { return handler{} }

type handler struct{}

// Schema declares the handler block; see the package doc.
func (handler) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "url", Type: sdk.TypeString, Required: true, Description: "The absolute http:// or https:// URL to send the request to."},
		{Name: "method", Type: sdk.TypeString, Default: http.MethodGet, Description: "The HTTP method."},
		{Name: "headers", Type: sdk.TypeMapString, Description: "Request headers; the Idempotency-Key and X-Cronfleet-* headers are the handler's."},
		{Name: "body", Type: sdk.TypeString, Description: "The request body."},
		{Name: "expect_status", Type: sdk.TypeListNumber, Description: "The status codes that count as success; default any 2xx."},
		{Name: "timeout", Type: sdk.TypeString, Default: DefaultTimeout.String(), Description: "How long the request may take, as a Go duration; the job's timeout applies too."},
		{Name: "tls_ca_file", Type: sdk.TypeString, Description: "PEM file of the CAs to trust instead of the system's."},
		{Name: "tls_cert_file", Type: sdk.TypeString, Description: "PEM client certificate for mutual TLS (with tls_key_file)."},
		{Name: "tls_key_file", Type: sdk.TypeString, Description: "PEM private key of tls_cert_file."},
		{Name: "tls_insecure_skip_verify", Type: sdk.TypeBool, Default: false, Description: "Do not verify the server's certificate."},
	}}
}

// request is a validated Settings.
type request struct {
	method  string
	url     *url.URL
	headers http.Header
	host    string // a "Host" header, which net/http takes from Request.Host
	body    string
	expect  []int // nil: any 2xx
	timeout time.Duration
	tls     *tls.Config
}

// Run sends the request of run's settings.
func (handler) Run(ctx context.Context, run *sdk.Run) (*sdk.Result, error) {
	var s Settings
	if err := run.Decode(&s); err != nil {
		return nil, fmt.Errorf("http: %w", err) // Permanent already
	}
	r, err := parse(s)
	if err != nil {
		// The same settings fail the same way on every attempt.
		return nil, sdk.Permanent(fmt.Errorf("http: settings: %w", err))
	}
	target := r.method + " " + r.url.Redacted()

	ctx, cancel := context.WithTimeoutCause(ctx, r.timeout, fmt.Errorf("timeout after %s", r.timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, r.url.String(), strings.NewReader(r.body))
	if err != nil {
		return nil, fmt.Errorf("http: %s: %w", target, err)
	}
	if r.body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.Header = r.headers
	if r.host != "" {
		req.Host = r.host
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "cronfleet-http")
	}
	req.Header.Set(HeaderIdempotencyKey, run.OccurrenceID)
	req.Header.Set(HeaderJob, run.Job)
	req.Header.Set(HeaderAttempt, strconv.Itoa(run.Attempt))
	req.Header.Set(HeaderFencingToken, strconv.FormatInt(run.FencingToken, 10))
	if !run.ScheduledAt.IsZero() {
		req.Header.Set(HeaderScheduledAt, run.ScheduledAt.UTC().Format(ScheduledAtLayout))
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = r.tls
	defer transport.CloseIdleConnections()
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return nil, fmt.Errorf("http: %s: %w", target, cause)
		}
		return nil, fmt.Errorf("http: %w", err) // *url.Error names method and URL, without a password
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, OutputLimit+1))
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		return nil, fmt.Errorf("http: %s: read body: %w", target, err)
	}
	truncated := len(body) > OutputLimit
	excerpt := validUTF8(body[:min(len(body), OutputLimit)])
	fmt.Fprintf(run.Output(), "%s: %s\n", target, resp.Status)
	if excerpt != "" {
		fmt.Fprintln(run.Output(), strings.TrimSuffix(excerpt, "\n"))
	}

	res := &sdk.Result{
		Message:  resp.Status,
		Metadata: map[string]string{StatusCodeKey: strconv.Itoa(resp.StatusCode)},
		Output:   excerpt,
	}
	if truncated {
		res.Metadata[TruncatedKey] = "true"
	}
	if !r.expected(resp.StatusCode) {
		return res, fmt.Errorf("http: %s: unexpected status %s (want %s)", target, resp.Status, r.want())
	}
	return res, nil
}

func (r *request) expected(code int) bool {
	if r.expect == nil {
		return code >= 200 && code <= 299
	}
	return slices.Contains(r.expect, code)
}

func (r *request) want() string {
	if r.expect == nil {
		return "2xx"
	}
	codes := make([]string, len(r.expect))
	for i, c := range r.expect {
		codes[i] = strconv.Itoa(c)
	}
	return strings.Join(codes, " or ")
}

// parse validates s and applies the defaults.
func parse(s Settings) (*request, error) {
	r := &request{method: strings.ToUpper(s.Method), body: s.Body, timeout: DefaultTimeout, headers: http.Header{}}
	if r.method == "" {
		r.method = http.MethodGet
	}
	if !isToken(r.method) {
		return nil, fmt.Errorf("method %q is not an HTTP method", s.Method)
	}
	if s.URL == "" {
		return nil, errors.New("url is required")
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q: want an absolute http:// or https:// URL", u.Redacted())
	}
	r.url = u
	for k, v := range s.Headers {
		if !isToken(k) {
			return nil, fmt.Errorf("headers: invalid header name %q", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("headers: %s: value contains a line break or NUL", k)
		}
		ck := http.CanonicalHeaderKey(k)
		if slices.Contains(reserved, ck) {
			return nil, fmt.Errorf("headers: %s is set by the handler from the occurrence", ck)
		}
		if ck == "Host" {
			r.host = v
			continue
		}
		r.headers.Set(ck, v)
	}
	if s.ExpectStatus != nil {
		if len(s.ExpectStatus) == 0 {
			return nil, errors.New("expect_status: empty list; leave it out to accept any 2xx")
		}
		for _, c := range s.ExpectStatus {
			if c < 100 || c > 599 {
				return nil, fmt.Errorf("expect_status: %d is not an HTTP status code", c)
			}
		}
		r.expect = s.ExpectStatus
	}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil {
			return nil, fmt.Errorf("timeout: %w", err)
		}
		if d <= 0 {
			return nil, fmt.Errorf("timeout: %s is not positive", s.Timeout)
		}
		r.timeout = d
	}
	r.tls, err = tlsConfig(s)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// tlsConfig builds the client TLS configuration of s; nil means Go's
// defaults (the system roots).
func tlsConfig(s Settings) (*tls.Config, error) {
	if s.TLSCAFile == "" && s.TLSCertFile == "" && s.TLSKeyFile == "" && !s.TLSInsecureSkipVerify {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.TLSInsecureSkipVerify}
	if s.TLSCAFile != "" {
		pem, err := os.ReadFile(s.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_file: %s holds no PEM certificate", s.TLSCAFile)
		}
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		return nil, errors.New("tls_cert_file and tls_key_file go together")
	}
	if s.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.TLSCertFile, s.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_cert_file/tls_key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// isToken reports whether s is an RFC 9110 token, the syntax of methods
// and header names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validUTF8 returns b as a string a protobuf string field accepts: a
// multi-byte character cut by the cap is dropped, other invalid bytes
// become U+FFFD.
func validUTF8(b []byte) string {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				b = b[:i]
			}
			break
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
