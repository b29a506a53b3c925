package httphandler_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	httphandler "github.com/cronfleet/cronfleet/plugin/handlers/http"
	"github.com/cronfleet/cronfleet/plugin/sdk"
	"github.com/cronfleet/cronfleet/plugin/sdk/sdktest"
)

// occ is the occurrence the tests run.
var occ = sdktest.Occurrence{
	Job:          "rotate",
	ScheduledAt:  time.Date(2026, 11, 26, 15, 4, 5, 7e6, time.FixedZone("X", 3600)),
	Attempt:      2,
	FencingToken: 41,
	OccurrenceID: "rotate@1795705445",
	Node:         "n1",
}

// call runs the handler in process, as the runner would (settings checked
// against the schema, defaults filled in), with settings s.
func call(t *testing.T, ctx context.Context, s httphandler.Settings) (*sdk.Result, error) {
	t.Helper()
	res, _, err := callLines(t, ctx, s)
	return res, err
}

func callLines(t *testing.T, ctx context.Context, s httphandler.Settings) (*sdk.Result, []string, error) {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return sdktest.RunContext(ctx, t, httphandler.New(), occ, raw)
}

func TestSchema(t *testing.T) {
	schema := httphandler.New().Schema()
	if err := schema.Validate(); err != nil {
		t.Fatal(err)
	}
	// Every attribute is a Settings field, and the defaults decode.
	defaults, err := schema.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	var s httphandler.Settings
	if err := (&sdk.Run{Settings: defaults}).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(httphandler.Settings{Method: "GET", Timeout: "30s"}, s); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	for _, a := range schema.Attributes {
		raw := `{"url":"http://x/","` + a.Name + `":null}`
		if err := (&sdk.Run{Settings: []byte(raw)}).Decode(&httphandler.Settings{}); err != nil {
			t.Errorf("attribute %s: %v", a.Name, err)
		}
	}
	if len(schema.Attributes) != reflect.TypeFor[httphandler.Settings]().NumField() {
		t.Errorf("%d attributes for %d settings fields", len(schema.Attributes), reflect.TypeFor[httphandler.Settings]().NumField())
	}
}

func TestRequest(t *testing.T) {
	type seen struct {
		Method, Path, Host, Body string
		Header                   map[string]string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := map[string]string{}
		for _, k := range []string{"Idempotency-Key", "X-Cronfleet-Job", "X-Cronfleet-Attempt", "X-Cronfleet-Fencing-Token", "X-Cronfleet-Scheduled-At", "Authorization", "User-Agent", "Content-Type"} {
			h[k] = r.Header.Get(k)
		}
		got <- seen{Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Body: string(b), Header: h}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "queued\n")
	}))
	t.Cleanup(srv.Close)

	res, lines, err := callLines(t, t.Context(), httphandler.Settings{
		Method:  "post",
		URL:     srv.URL + "/rotate?dry=0",
		Headers: map[string]string{"authorization": "Bearer t", "Content-Type": "application/json", "Host": "api.example"},
		Body:    `{"a":1}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := seen{
		Method: "POST", Path: "/rotate?dry=0", Host: "api.example", Body: `{"a":1}`,
		Header: map[string]string{
			"Idempotency-Key":           "rotate@1795705445",
			"X-Cronfleet-Job":           "rotate",
			"X-Cronfleet-Attempt":       "2",
			"X-Cronfleet-Fencing-Token": "41",
			"X-Cronfleet-Scheduled-At":  "2026-11-26T14:04:05.007Z",
			"Authorization":             "Bearer t",
			"User-Agent":                "cronfleet-http",
			"Content-Type":              "application/json",
		},
	}
	if diff := cmp.Diff(want, <-got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	wantRes := &sdk.Result{Message: "202 Accepted", Metadata: map[string]string{"status_code": "202"}, Output: "queued\n"}
	if diff := cmp.Diff(wantRes, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	wantLines := []string{"POST " + srv.URL + "/rotate?dry=0: 202 Accepted", "queued"}
	if diff := cmp.Diff(wantLines, lines); diff != "" {
		t.Errorf("output lines (-want +got):\n%s", diff)
	}
}

func TestExpectStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := 0
		for _, c := range r.URL.Path[1:] {
			code = code*10 + int(c-'0')
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name    string
		status  string
		expect  []int
		wantErr string
	}{
		{name: "200 default", status: "200"},
		{name: "204 default", status: "204"},
		{name: "299 default", status: "299"},
		{name: "404 default", status: "404", wantErr: "unexpected status 404 Not Found (want 2xx)"},
		{name: "500 default", status: "500", wantErr: "unexpected status 500"},
		{name: "404 expected", status: "404", expect: []int{404, 410}},
		{name: "200 not listed", status: "200", expect: []int{201, 202}, wantErr: "(want 201 or 202)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := call(t, t.Context(), httphandler.Settings{URL: srv.URL + "/" + tc.status, ExpectStatus: tc.expect})
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if sdk.IsPermanent(err) {
				t.Errorf("err = %v is permanent; a status may change on retry", err)
			}
			if res == nil || res.Metadata[httphandler.StatusCodeKey] != tc.status {
				t.Errorf("result = %+v, want status_code %s", res, tc.status)
			}
		})
	}
}

func TestSettingsErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	if err := os.WriteFile(notPEM, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		settings string
		wantErr  string
		attr     string // what Check (runner validate) reports it at; "-" for nothing
	}{
		{`{}`, "url: is required", "url"},
		{`{"url":"ftp://x/"}`, "want an absolute http", "url"},
		{`{"url":"/relative"}`, "want an absolute http", "url"},
		{`{"url":"http://x/","method":"GE T"}`, "not an HTTP method", "method"},
		{`{"url":"http://x/","timeout":"soon"}`, "timeout", "timeout"},
		{`{"url":"http://x/","timeout":"-1s"}`, "not positive", "timeout"},
		{`{"url":"http://x/","expect_status":[]}`, "empty list", "expect_status"},
		{`{"url":"http://x/","expect_status":[42]}`, "not an HTTP status code", "expect_status"},
		{`{"url":"http://x/","headers":{"idempotency-key":"mine"}}`, "Idempotency-Key is set by the handler", "headers"},
		{`{"url":"http://x/","headers":{"X-A":"a\r\nX-B: b"}}`, "line break", "headers"},
		{`{"url":"http://x/","headers":{"a b":"c"}}`, "invalid header name", "headers"},
		{`{"url":"http://x/","tls_cert_file":"c.pem"}`, "go together", "tls_cert_file"},
		// The files are the nodes' business: validation elsewhere does not read them.
		{`{"url":"http://x/","tls_ca_file":"` + filepath.Join(dir, "missing.pem") + `"}`, "tls_ca_file", "-"},
		{`{"url":"http://x/","tls_ca_file":"` + notPEM + `"}`, "no PEM certificate", "-"},
		{`{"url":"http://x/","tls":{}}`, `unknown field "tls"`, ""},
	} {
		t.Run(tc.settings, func(t *testing.T) {
			_, err := httphandler.New().Run(t.Context(), &sdk.Run{Settings: []byte(tc.settings)})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if !sdk.IsPermanent(err) {
				t.Errorf("err = %v, want it marked permanent", err)
			}
			problems := sdk.Check(httphandler.New(), []byte(tc.settings))
			switch {
			case tc.attr == "-" && len(problems) != 0:
				t.Errorf("Check = %+v, want no problems", problems)
			case tc.attr != "-" && (len(problems) != 1 || problems[0].Attribute != tc.attr):
				t.Errorf("Check = %+v, want one problem at %q", problems, tc.attr)
			}
		})
	}
}

// blockingServer answers nothing until the client goes away; received is
// closed when a request arrived.
func blockingServer(t *testing.T) (srv *httptest.Server, received <-chan struct{}) {
	t.Helper()
	ch := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		close(ch)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func TestTimeout(t *testing.T) {
	srv, _ := blockingServer(t)
	start := time.Now()
	_, err := call(t, t.Context(), httphandler.Settings{URL: srv.URL, Timeout: "100ms"})
	if err == nil || !strings.Contains(err.Error(), "timeout after 100ms") {
		t.Errorf("err = %v, want the timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestCancel(t *testing.T) {
	srv, received := blockingServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-received
		cancel()
	}()
	_, err := call(t, ctx, httphandler.Settings{URL: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("err = %v, want the cancellation", err)
	}
}

func TestBodyCap(t *testing.T) {
	for _, tc := range []struct {
		name, body    string
		wantOutput    string
		wantTruncated bool
	}{
		{name: "short", body: "ok", wantOutput: "ok"},
		{name: "exact", body: strings.Repeat("x", httphandler.OutputLimit), wantOutput: strings.Repeat("x", httphandler.OutputLimit)},
		{name: "long", body: strings.Repeat("y", 3*httphandler.OutputLimit), wantOutput: strings.Repeat("y", httphandler.OutputLimit), wantTruncated: true},
		// The cap cuts the last "é" in half: the half is dropped.
		{name: "cut rune", body: "x" + strings.Repeat("é", httphandler.OutputLimit), wantOutput: "x" + strings.Repeat("é", httphandler.OutputLimit/2-1), wantTruncated: true},
		{name: "binary", body: "a\xff\xfeb", wantOutput: "a\uFFFDb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			res, err := call(t, t.Context(), httphandler.Settings{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			if res.Output != tc.wantOutput {
				t.Errorf("output: %d bytes %.20q…, want %d bytes %.20q…", len(res.Output), res.Output, len(tc.wantOutput), tc.wantOutput)
			}
			if !utf8.ValidString(res.Output) {
				t.Error("output is not valid UTF-8")
			}
			if got := res.Metadata[httphandler.TruncatedKey] == "true"; got != tc.wantTruncated {
				t.Errorf("truncated = %v, want %v", got, tc.wantTruncated)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	clientCert, clientKey, clientPool := selfSigned(t, dir, "client")

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(dir, "server-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		s       httphandler.Settings
		wantErr string
	}{
		{name: "system roots", s: httphandler.Settings{TLSCertFile: clientCert, TLSKeyFile: clientKey}, wantErr: "certificate"},
		{name: "ca_file without client cert", s: httphandler.Settings{TLSCAFile: ca}, wantErr: "certificate"},
		{name: "ca_file and client cert", s: httphandler.Settings{TLSCAFile: ca, TLSCertFile: clientCert, TLSKeyFile: clientKey}},
		{name: "insecure", s: httphandler.Settings{TLSInsecureSkipVerify: true, TLSCertFile: clientCert, TLSKeyFile: clientKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.URL = srv.URL
			res, err := call(t, t.Context(), tc.s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Output != "hello client" {
				t.Errorf("output = %q", res.Output)
			}
		})
	}
}

// selfSigned writes a self-signed client certificate and its key into dir
// and returns their paths and a pool trusting the certificate.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestAlertBody: an alert without a body of its settings sends the event as JSON; one
// with a body sends that.
func TestAlertBody(t *testing.T) {
	bodies := make(chan string, 2)
	types := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		types <- r.Header.Get("Content-Type")
	}))
	t.Cleanup(srv.Close)
	alert := sdktest.Occurrence{Alert: &sdk.Alert{Kind: "late", Job: "j", Occurrence: "j@2026-01-01T00:00:00.000Z",
		ScheduledAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	for _, s := range []httphandler.Settings{{URL: srv.URL, Method: "POST"}, {URL: srv.URL, Method: "POST", Body: "x"}} {
		if _, _, err := sdktest.RunContext(t.Context(), t, httphandler.New(), alert, s); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := <-bodies, `{"kind":"late","job":"j","occurrence":"j@2026-01-01T00:00:00.000Z","scheduled_at":"2026-01-01T00:00:00Z"}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if got := <-types; got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if got := <-bodies; got != "x" {
		t.Errorf("body %q, want the settings' own", got)
	}
}
