package redisconn

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzOptions reads Redis URLs. raw, taken as it is, must never panic, and what Options
// accepts must be a client that can be built: its hosts with ports, a single server with one
// host, a Sentinel set with a master, a Cluster on database 0. The URL built from the other
// arguments, scheme://user:pass@hosts?query&key=spass&more, has passwords where operators
// put them; no error and no Redact of it may show the password in the user info, nor the
// value of a sentinel_password parameter, when it is long enough to be told from the rest of
// the URL (4 bytes) and appears nowhere else in it. testdata/fuzz/FuzzOptions holds the URLs
// whose sentinel password did show: a second sentinel_password, and one with an escaped name.
func FuzzOptions(f *testing.F) {
	f.Add("redis://u:hunter2@h:1/0", "redis", "u", "hunter2", "h:1/0", "", "", "", "")
	f.Add("rediss://[::1]:6380", "redis-sentinel", "", "s3cr%40t", "s1:26379,s2:26379/2", "master=m", "sentinel_password", "sp4ss", "sentinel_username=su")
	f.Add("user:hunter2@127.0.0.1:6379", "rediss-cluster", "a:b", "c@d/e", "h:1/2", "%zz", "", "", "")
	f.Add("redis://:p@ss@h:99999/-1?master=", "http", "u", "hunter2", "@h:0", "master=m", "sentinel_password", "ab;cd", "")
	f.Fuzz(func(t *testing.T, raw, scheme, user, pass, hosts, query, key, spass, more string) {
		checkOptions(t, raw)

		u := scheme + "://" + user + ":" + pass + "@" + hosts + "?" + query + "&" + key + "=" + spass + "&" + more
		checkOptions(t, u)
		var secrets []string
		// The user info is what follows the scheme up to the last "@" before the query (the
		// package doc): a "?" in it must be escaped.
		at := len(scheme + "://" + user + ":")
		if strings.Index(u, "://") == len(scheme) && !strings.Contains(user+pass, "?") && once(u, pass, at) {
			secrets = append(secrets, pass)
		}
		if k, err := url.QueryUnescape(key); err == nil && k == "sentinel_password" && !strings.Contains(spass, "&") &&
			once(u, spass, len(u)-len(spass+"&"+more)) {
			secrets = append(secrets, spass)
		}
		shown := []string{Redact(u)}
		if _, _, err := Options(Settings{URL: u}); err != nil {
			shown = append(shown, err.Error())
		}
		for _, s := range shown {
			for _, secret := range secrets {
				if strings.Contains(s, secret) || strings.Contains(s, quoted(secret)) {
					t.Fatalf("the password %q of %q shows in %q", secret, u, s)
				}
			}
		}
	})
}

// once reports whether secret is long enough to tell apart and appears in u at i only,
// also as errors show u (%q, whose escapes could spell it next to it), and whether the
// mask cannot spell it either (it has no 'x').
func once(u, secret string, i int) bool {
	q := strconv.Quote(u)
	return len(secret) >= 4 && strings.Index(u, secret) == i && strings.LastIndex(u, secret) == i &&
		strings.Count(q, secret) <= 1 && strings.Count(q, quoted(secret)) <= 1 && !strings.Contains(secret, "x")
}

// quoted is s as %q shows it within a quoted string.
func quoted(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// checkOptions checks what Options makes of raw.
func checkOptions(t *testing.T, raw string) {
	t.Helper()
	_ = Redact(raw)
	o, kind, err := Options(Settings{URL: raw})
	if err != nil {
		return
	}
	if len(o.Addrs) == 0 || (kind == Single && len(o.Addrs) != 1) {
		t.Fatalf("Options(%q): %s with addresses %q", raw, kind, o.Addrs)
	}
	for _, a := range o.Addrs {
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			t.Fatalf("Options(%q): address %q", raw, a)
		}
	}
	switch kind {
	case Single:
	case Sentinel:
		if o.MasterName == "" {
			t.Fatalf("Options(%q): a Sentinel set without a master", raw)
		}
	case Cluster:
		if o.DB != 0 || !o.IsClusterMode {
			t.Fatalf("Options(%q): a Cluster on database %d, cluster mode %v", raw, o.DB, o.IsClusterMode)
		}
	default:
		t.Fatalf("Options(%q): kind %q", raw, kind)
	}
	if o.DB < 0 || !o.ContextTimeoutEnabled {
		t.Fatalf("Options(%q): database %d, context timeouts %v", raw, o.DB, o.ContextTimeoutEnabled)
	}
}
