package httphandler

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cronfleet/cronfleet/internal/tlsfiles"
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
// A job's headers may not set them: the receiver must be able to trust them.
const (
	// HeaderIdempotencyKey carries the occurrence id, the same on every
	// attempt and node, so the receiver can deduplicate a retried or
	// taken-over request.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderJob carries the job's name.
	HeaderJob = "X-Cronfleet-Job"
	// HeaderAttempt carries the attempt number, counting from 1, so the
	// receiver can tell a retry from a first try.
	HeaderAttempt = "X-Cronfleet-Attempt"
	// HeaderFencingToken carries the claim's fencing token, strictly growing
	// per job: a receiver that remembers the highest it has seen can refuse
	// the late request of a holder that lost its lease.
	HeaderFencingToken = "X-Cronfleet-Fencing-Token"
	// HeaderScheduledAt carries the occurrence's due time (not the send
	// time) in ScheduledAtLayout, UTC, so a late or retried run still works
	// on the period it was scheduled for. It is left out when the run has
	// no due time.
	HeaderScheduledAt = "X-Cronfleet-Scheduled-At"
)

// ScheduledAtLayout formats the X-Cronfleet-Scheduled-At header.
const ScheduledAtLayout = "2006-01-02T15:04:05.000Z07:00"

// reserved are the headers a job may not set, canonicalised.
var reserved = []string{HeaderIdempotencyKey, HeaderJob, HeaderAttempt, HeaderFencingToken, HeaderScheduledAt}

// Settings is the http handler's settings block; see Schema. Each field is
// the HCL attribute named by its JSON tag. Invalid settings fail the run
// before any request is sent, with a permanent error, since every attempt
// would fail the same way.
type Settings struct {
	// Method is the "method" attribute: the request method, upper-cased, so
	// "post" is POST. Any RFC 9110 token is accepted, not only the standard
	// methods. Default "GET".
	Method string `json:"method"`
	// URL is the "url" attribute, required: an absolute http:// or https://
	// URL with a host. A password in it is sent but redacted from errors
	// and output, which end up in logs and history.
	URL string `json:"url"`
	// Headers is the "headers" attribute: request headers, name to value.
	// A "Host" entry sets the request's Host (for virtual hosts) rather
	// than a header. The headers of the Header constants are refused (the
	// handler sets them from the occurrence), as are names that are not
	// tokens and values with a line break or NUL. User-Agent defaults to
	// "cronfleet-http". Default: none.
	Headers map[string]string `json:"headers"`
	// Body is the "body" attribute: the request body, sent as is. No
	// Content-Type is added; set one in Headers. Default (empty): no body.
	Body string `json:"body"`
	// ExpectStatus is the "expect_status" attribute: the status codes
	// (100-599) of the final response, after redirects, that count as
	// success; any other fails the run, so the job's retry policy applies.
	// Default (absent): any 2xx. An empty list is an error, not "anything".
	ExpectStatus []int `json:"expect_status"`
	// Timeout is the "timeout" attribute: how long the request may take,
	// reading the response included, as a positive Go duration ("90s",
	// "2m"). Default "30s" (DefaultTimeout). The job's timeout, a lost
	// lease or the node's shutdown can still end it sooner.
	Timeout string `json:"timeout"`
	// TLSCAFile is the "tls_ca_file" attribute: a PEM file, on the node
	// running the plugin, of the CAs to trust instead of (not besides) the
	// system's, for services with an internal CA. It must hold at least one
	// certificate. Default (empty): the system's roots.
	TLSCAFile string `json:"tls_ca_file"`
	// TLSCertFile is the "tls_cert_file" attribute: a PEM client
	// certificate for mutual TLS, set together with TLSKeyFile. Both are
	// read on every run, so a renewed certificate is used without a
	// restart. Default (empty): no client certificate.
	TLSCertFile string `json:"tls_cert_file"`
	// TLSKeyFile is the "tls_key_file" attribute: the PEM private key of
	// TLSCertFile; one without the other is an error. Default: none.
	TLSKeyFile string `json:"tls_key_file"`
	// TLSInsecureSkipVerify is the "tls_insecure_skip_verify" attribute:
	// when true the server's certificate and name are not verified, so
	// anyone on the path can impersonate the server; meant for tests, not
	// production. Default false.
	TLSInsecureSkipVerify bool `json:"tls_insecure_skip_verify"`
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
	if err == nil {
		r.tls, err = tlsConfig(s)
	}
	if err != nil {
		// The same settings fail the same way on every attempt.
		return nil, sdk.Permanent(fmt.Errorf("http: settings: %w", err))
	}
	target := r.method + " " + r.url.Redacted()
	if run.Alert != nil && r.body == "" {
		// An alert's receiver needs the event; a body of the settings' own is sent as is.
		b, err := json.Marshal(run.Alert)
		if err != nil {
			return nil, sdk.Permanent(fmt.Errorf("http: %s: alert body: %w", target, err))
		}
		r.body = string(b)
		if r.headers.Get("Content-Type") == "" {
			r.headers.Set("Content-Type", "application/json")
		}
	}

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
		return nil, sdk.InvalidSetting("method", "%q is not an HTTP method", s.Method)
	}
	if s.URL == "" {
		return nil, sdk.InvalidSetting("url", "is required")
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return nil, sdk.InvalidSetting("url", "%v", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, sdk.InvalidSetting("url", "%q: want an absolute http:// or https:// URL", u.Redacted())
	}
	r.url = u
	for k, v := range s.Headers {
		if !isToken(k) {
			return nil, sdk.InvalidSetting("headers", "invalid header name %q", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, sdk.InvalidSetting("headers", "%s: value contains a line break or NUL", k)
		}
		ck := http.CanonicalHeaderKey(k)
		if slices.Contains(reserved, ck) {
			return nil, sdk.InvalidSetting("headers", "%s is set by the handler from the occurrence", ck)
		}
		if ck == "Host" {
			r.host = v
			continue
		}
		r.headers.Set(ck, v)
	}
	if s.ExpectStatus != nil {
		if len(s.ExpectStatus) == 0 {
			return nil, sdk.InvalidSetting("expect_status", "empty list; leave it out to accept any 2xx")
		}
		for _, c := range s.ExpectStatus {
			if c < 100 || c > 599 {
				return nil, sdk.InvalidSetting("expect_status", "%d is not an HTTP status code", c)
			}
		}
		r.expect = s.ExpectStatus
	}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil {
			return nil, sdk.InvalidSetting("timeout", "%q is not a duration such as \"30s\"", s.Timeout)
		}
		if d <= 0 {
			return nil, sdk.InvalidSetting("timeout", "%s is not positive", s.Timeout)
		}
		r.timeout = d
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		return nil, sdk.InvalidSetting("tls_cert_file", "tls_cert_file and tls_key_file go together")
	}
	return r, nil
}

// Check reports settings that every run would refuse, so that `runner validate` finds
// them. The TLS files are read by the runs, on the nodes: they need not exist where the
// job files are validated.
func (handler) Check(run *sdk.Run) error {
	var s Settings
	if err := run.Decode(&s); err != nil {
		return err
	}
	_, err := parse(s)
	return err
}

// tlsConfig builds the client TLS configuration of s; nil means Go's
// defaults (the system roots).
func tlsConfig(s Settings) (*tls.Config, error) {
	files := tlsfiles.Files{CA: s.TLSCAFile, Cert: s.TLSCertFile, Key: s.TLSKeyFile}
	if !files.Any() && !s.TLSInsecureSkipVerify {
		return nil, nil
	}
	cfg, err := files.Config()
	if err != nil {
		return nil, fmt.Errorf("tls_ca_file, tls_cert_file, tls_key_file: %w", err)
	}
	cfg.InsecureSkipVerify = s.TLSInsecureSkipVerify
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
