package redisconn

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOptionsReadEveryURLForm(t *testing.T) {
	for _, tc := range []struct {
		url        string
		kind       Kind
		addrs      []string
		db         int
		user, pass string
		master     string
		sentUser   string
		sentPass   string
		tls        bool
	}{
		{url: "redis://127.0.0.1:6379/0", kind: Single, addrs: []string{"127.0.0.1:6379"}},
		{url: "redis://localhost", kind: Single, addrs: []string{"localhost:6379"}},
		{url: "redis://app:s3cr%40t@10.0.0.1:6380/3", kind: Single, addrs: []string{"10.0.0.1:6380"}, db: 3, user: "app", pass: "s3cr@t"},
		{url: "redis://:p@ss@h:1", kind: Single, addrs: []string{"h:1"}, pass: "p@ss"},
		{url: "rediss://h:6380", kind: Single, addrs: []string{"h:6380"}, tls: true},
		{url: "redis://[::1]:7000/1", kind: Single, addrs: []string{"[::1]:7000"}, db: 1},
		{
			url:  "redis-sentinel://u:pw@s1:26379,s2:26379,s3:26379/2?master=mymaster&sentinel_username=su&sentinel_password=sp",
			kind: Sentinel, addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, db: 2,
			user: "u", pass: "pw", master: "mymaster", sentUser: "su", sentPass: "sp",
		},
		{url: "rediss-sentinel://s1:1/0?master=m", kind: Sentinel, addrs: []string{"s1:1"}, master: "m", tls: true},
		{url: "redis-cluster://h1:7000,h2:7001,h3:7002", kind: Cluster, addrs: []string{"h1:7000", "h2:7001", "h3:7002"}},
		{url: "redis-cluster://u:pw@h1:7000", kind: Cluster, addrs: []string{"h1:7000"}, user: "u", pass: "pw"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			o, kind, err := Options(Settings{URL: tc.url})
			if err != nil {
				t.Fatal(err)
			}
			if kind != tc.kind || !slices.Equal(o.Addrs, tc.addrs) || o.DB != tc.db || o.Username != tc.user ||
				o.Password != tc.pass || o.MasterName != tc.master || o.SentinelUsername != tc.sentUser ||
				o.SentinelPassword != tc.sentPass || (o.TLSConfig != nil) != tc.tls {
				t.Errorf("got kind %s addrs %v db %d user %q pass %q master %q sentinel %q/%q tls %v",
					kind, o.Addrs, o.DB, o.Username, o.Password, o.MasterName, o.SentinelUsername, o.SentinelPassword, o.TLSConfig != nil)
			}
			if kind == Cluster && !o.IsClusterMode {
				t.Error("a Cluster URL with one seed must still make a cluster client")
			}
			if !o.ContextTimeoutEnabled {
				t.Error("calls' deadlines must bound the client's reads")
			}
		})
	}
}

func TestOptionsRefuseBadURLsWithoutPrintingSecrets(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"127.0.0.1:6379", "no scheme"},
		{"user:hunter2@127.0.0.1:6379", "no scheme"},
		{"http://u:hunter2@h:1", `unknown scheme "http"`},
		{"redis://u:hunter2@h:notaport/0", `port "notaport"`},
		{"redis://u:hunter2@h1:1,h2:2", "2 hosts for a single server"},
		{"redis://u:hunter2@h:1/zero", `database "zero"`},
		{"redis://u:hunter2@h:1/0?master=m", `unknown query parameter "master"`},
		{"redis-sentinel://u:hunter2@h:1/0", "needs ?master=NAME"},
		{"redis-sentinel://h:1/0?master=m&sentinel_password=hunter2&x=1", `unknown query parameter "x"`},
		{"redis-cluster://u:hunter2@h:1/2", "database 0 only"},
		{"redis://u:hunter2@/0", "no host"},
		{"redis://u:hunter2@h:1/0%zz", "malformed"},
		{"rediss://u:hunter2@h:1/0?foo=%zz", "not escaped right"},
		{"redis-sentinel://h:1/0?master=m&sentinel_password=hunter2%zz", "not escaped right"},
		{"redis://u:hunter2@a]b/0", `host "a]b": want host:port`},
		{"redis-cluster://u:hunter2@h:1,a[b", `host "a[b": want host:port`},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, _, err := Options(Settings{URL: tc.url})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q prints the password", err)
			}
		})
	}
}

func TestPasswordFromFileOrEnvironment(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, _, err := Options(Settings{URL: "redis://h:1", PasswordFile: file, Password: "from-env"})
	if err != nil || o.Password != "from-file" {
		t.Fatalf("password %q, %v: want the file's, trimmed", o.Password, err)
	}
	o, _, err = Options(Settings{URL: "redis://h:1", Password: "from-env"})
	if err != nil || o.Password != "from-env" {
		t.Fatalf("password %q, %v: want the environment's", o.Password, err)
	}
	o, _, err = Options(Settings{URL: "redis://:in-url@h:1", Password: "from-env"})
	if err != nil || o.Password != "in-url" {
		t.Fatalf("password %q, %v: the URL's comes before the environment's", o.Password, err)
	}
	if _, _, err = Options(Settings{URL: "redis://:in-url@h:1", PasswordFile: file}); err == nil || strings.Contains(err.Error(), "in-url") {
		t.Fatalf("a password in the URL and in a file: %v", err)
	}
	if _, _, err = Options(Settings{URL: "redis://h:1", PasswordFile: filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("a missing password file was accepted")
	}
	o, _, err = Options(Settings{URL: "redis-sentinel://h:1/0?master=m", SentinelPasswordFile: file})
	if err != nil || o.SentinelPassword != "from-file" || o.Password != "" {
		t.Fatalf("sentinel password %q, password %q, %v", o.SentinelPassword, o.Password, err)
	}
}

func TestTLSFilesNeedATLSScheme(t *testing.T) {
	if _, _, err := Options(Settings{URL: "redis://h:1", TLS: TLSFiles{CA: "ca.pem"}}); err == nil || !strings.Contains(err.Error(), "rediss://") {
		t.Fatalf("TLS files with redis://: %v", err)
	}
	if _, _, err := Options(Settings{URL: "redis-cluster://h:1", TLS: TLSFiles{CA: "ca.pem"}}); err == nil || !strings.Contains(err.Error(), "rediss-cluster://") {
		t.Fatalf("TLS files with redis-cluster://: %v", err)
	}
	if _, _, err := Options(Settings{URL: "rediss://h:1", TLS: TLSFiles{Cert: "c.pem"}}); err == nil || !strings.Contains(err.Error(), "give both") {
		t.Fatalf("a certificate without its key: %v", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Options(Settings{URL: "rediss://h:1", TLS: TLSFiles{CA: ca}}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a CA file without a certificate: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://u:hunter2@h:1/0":   "redis://u:xxxxx@h:1/0",
		"redis://:hunter2@h:1":      "redis://:xxxxx@h:1",
		"redis://u@h:1":             "redis://u@h:1",
		"redis://u:hun/ter@2@h:1/0": "redis://u:xxxxx@h:1/0",
		"u:hunter2@h:1":             "xxxxx@h:1",
		"redis-sentinel://h:1/0?master=m&sentinel_password=hunter2": "redis-sentinel://h:1/0?master=m&sentinel_password=xxxxx",
		"redis://h:1/0": "redis://h:1/0",
		"redis-sentinel://h:1?sentinel_password=a&master=m&sentinel_password=hunter2":   "redis-sentinel://h:1?sentinel_password=xxxxx&master=m&sentinel_password=xxxxx",
		"redis-sentinel://h:1?master=m&sentinel%5Fpassword=hunter2&sentinel_username=u": "redis-sentinel://h:1?master=m&sentinel%5Fpassword=xxxxx&sentinel_username=u",
		"redis-sentinel://h:1?sentinel_password=hun?ter2&master=m":                      "redis-sentinel://h:1?sentinel_password=xxxxx&master=m",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
