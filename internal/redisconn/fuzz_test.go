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
// put them: no error and no Redact of it may show the password in the user info, nor the
// value of a sentinel_password parameter, when it is long enough to be told from the rest
// (4 bytes). A password "shows" when it appears more often than it does for the same URL
// with the password's letters and digits changed: what the message or the rest of the URL
// spell is not the password. testdata/fuzz/FuzzOptions holds URLs whose sentinel password
// did show: a second sentinel_password, one with an escaped name, one holding a "?".
func FuzzOptions(f *testing.F) {
	f.Add("redis://u:hunter2@h:1/0", "redis", "u", "hunter2", "h:1/0", "", "", "", "")
	f.Add("rediss://[::1]:6380", "redis-sentinel", "", "s3cr%40t", "s1:26379,s2:26379/2", "master=m", "sentinel_password", "sp4ss", "sentinel_username=su")
	f.Add("user:hunter2@127.0.0.1:6379", "rediss-cluster", "a:b", "c@d/e", "h:1/2", "%zz", "", "", "")
	f.Add("redis://:p@ss@h:99999/-1?master=", "http", "u", "65535", "@h:0", "master=m", "sentinel_password", "ab;cd", "")
	f.Fuzz(func(t *testing.T, raw, scheme, user, pass, hosts, query, key, spass, more string) {
		checkOptions(t, raw)

		u := scheme + "://" + user + ":" + pass + "@" + hosts + "?" + query + "&" + key + "=" + spass + "&" + more
		checkOptions(t, u)
		type secret struct {
			text string
			at   int // where in u
		}
		var secrets []secret
		// The user info is what follows the scheme up to the last "@" before the query (the
		// package doc): a "?" in it must be escaped.
		if strings.Index(u, "://") == len(scheme) && !strings.Contains(user+pass, "?") {
			secrets = append(secrets, secret{pass, len(scheme + "://" + user + ":")})
		}
		if k, err := url.QueryUnescape(key); err == nil && k == "sentinel_password" && !strings.Contains(spass, "&") {
			secrets = append(secrets, secret{spass, len(u) - len(spass+"&"+more)})
		}
		for _, s := range secrets {
			other := rotate(s.text)
			if len(s.text) < 4 || other == s.text {
				continue
			}
			got, base := shown(u), shown(u[:s.at]+other+u[s.at+len(s.text):])
			for i, g := range got {
				b := ""
				if i < len(base) {
					b = base[i]
				}
				for _, form := range []string{s.text, quoted(s.text)} {
					if strings.Count(g, form) > strings.Count(b, form) {
						t.Fatalf("the password %q of %q shows in %q", s.text, u, g)
					}
				}
			}
		}
	})
}

// shown is what the package shows of the URL u: its Redact, and Options' error, if any.
func shown(u string) []string {
	out := []string{Redact(u)}
	if _, _, err := Options(Settings{URL: u}); err != nil {
		out = append(out, err.Error())
	}
	return out
}

// rotate changes each ASCII letter and digit of s to the next of its kind, hexadecimal
// digits apart from the other letters (so that an escape "%XX" stays as valid as it was),
// and leaves every other byte.
func rotate(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c == '9':
			b[i] = '0'
		case c == 'f' || c == 'F':
			b[i] = c - 5
		case c == 'z' || c == 'Z':
			b[i] = c - 19
		case c >= '0' && c <= '8', c >= 'a' && c <= 'y', c >= 'A' && c <= 'Y':
			b[i] = c + 1
		}
	}
	return string(b)
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
