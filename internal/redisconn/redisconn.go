// Package redisconn turns the Redis URL an operator gives into one go-redis UniversalClient,
// whatever the deployment: a single server, a Sentinel set or a Cluster.
//
// go-redis parses only its own URL shapes (a single host, extra addresses as "addr" query
// parameters, the Redis password in the user info even for Sentinel), so this package reads
// the shapes operators write and documents (see README), and builds UniversalOptions from
// them; go-redis picks the client from the options. Every command of the runner opens Redis
// here, so a URL that works for "runner run" works for every other command.
//
//	redis://[user:pass@]host:port[/db]                    one server
//	rediss://…                                            the same over TLS
//	redis-sentinel://[user:pass@]h1:p1,h2:p2,h3:p3[/db]?master=NAME[&sentinel_username=U&sentinel_password=P]
//	redis-cluster://[user:pass@]h1:p1,h2:p2,…             seed addresses of a Cluster
//
// rediss-sentinel:// and rediss-cluster:// are the TLS forms of the last two. The password can
// come from a file or the environment instead (Settings), so that it is not in the runner's
// argv, and no error or log line of this package prints it.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cronfleet/cronfleet/internal/tlsfiles"
)

// Kind is the shape of a Redis deployment.
type Kind string

// The deployments a URL can name.
const (
	Single   Kind = "single"
	Sentinel Kind = "sentinel"
	Cluster  Kind = "cluster"
)

// Settings say how to reach the fleet's Redis: the URL, and what an operator keeps out of it.
type Settings struct {
	// URL is the Redis URL, in one of the forms of the package doc.
	URL string
	// PasswordFile names a file holding the Redis password (surrounding white space is
	// ignored). It may not be combined with a password in the URL.
	PasswordFile string
	// Password is used when neither the URL nor PasswordFile gives one; callers fill it from
	// the environment.
	Password string
	// SentinelPasswordFile names a file holding the password of the sentinels themselves,
	// which may differ from the data servers'.
	SentinelPasswordFile string
	// SentinelPassword is used when neither the URL nor SentinelPasswordFile gives one.
	SentinelPassword string
	// TLS names the files of a TLS connection (rediss:// and its Sentinel and Cluster forms).
	TLS TLSFiles
}

// TLSFiles are PEM files for a TLS connection to Redis (see tlsfiles.Files).
type TLSFiles = tlsfiles.Files

// clusterReload is how often a Cluster client re-reads the slot map. go-redis re-reads it at
// once on a MOVED or ASK reply, but a master that died sends none: only this interval makes
// the client find the replica promoted in its place (go-redis' default is a minute, which
// would leave that master's shards unreachable as long).
const clusterReload = time.Second

// Open builds the client for s. Nothing is dialled yet: the first command connects.
func Open(s Settings) (redis.UniversalClient, Kind, error) {
	opts, kind, err := Options(s)
	if err != nil {
		return nil, "", err
	}
	if kind == Cluster {
		co := opts.Cluster()
		co.ClusterStateReloadInterval = clusterReload
		return redis.NewClusterClient(co), kind, nil
	}
	return redis.NewUniversalClient(opts), kind, nil
}

// Options builds the client options for s, and says which deployment the URL names.
func Options(s Settings) (*redis.UniversalOptions, Kind, error) {
	shown := Redact(s.URL)
	scheme, rest, ok := strings.Cut(s.URL, "://")
	if !ok {
		return nil, "", fmt.Errorf("redis URL %q: no scheme; want redis://, rediss://, redis-sentinel:// or redis-cluster://", shown)
	}
	var kind Kind
	useTLS := false
	switch scheme {
	case "redis":
		kind = Single
	case "rediss":
		kind, useTLS = Single, true
	case "redis-sentinel":
		kind = Sentinel
	case "rediss-sentinel":
		kind, useTLS = Sentinel, true
	case "redis-cluster":
		kind = Cluster
	case "rediss-cluster":
		kind, useTLS = Cluster, true
	default:
		return nil, "", fmt.Errorf("redis URL %q: unknown scheme %q; want redis://, rediss://, redis-sentinel:// or redis-cluster:// (rediss-… for TLS)", shown, scheme)
	}
	// url.Parse takes one host only: parse the rest with a placeholder host, and split the
	// real host list apart. Its errors are not wrapped, since they quote the whole URL.
	userinfo, hostsAndPath := cutUserinfo(rest)
	hostList, tail := hostsAndPath, ""
	if i := strings.IndexAny(hostsAndPath, "/?"); i >= 0 {
		hostList, tail = hostsAndPath[:i], hostsAndPath[i:]
	}
	u, err := url.Parse("x://" + placeholderUser(userinfo) + "h" + tail)
	if err != nil {
		return nil, "", fmt.Errorf("redis URL %q: malformed path or query", shown)
	}
	user, pass, err := splitUserinfo(userinfo)
	if err != nil {
		return nil, "", fmt.Errorf("redis URL %q: %w", shown, err)
	}
	addrs, err := splitHosts(hostList)
	if err != nil {
		return nil, "", fmt.Errorf("redis URL %q: %w", shown, err)
	}
	if kind == Single && len(addrs) > 1 {
		return nil, "", fmt.Errorf("redis URL %q: %d hosts for a single server; use redis-sentinel:// or redis-cluster:// for several", shown, len(addrs))
	}

	opts := &redis.UniversalOptions{
		Addrs:    addrs,
		Username: user,
		// Every call carries its own deadline (queue.Config.CallTimeout); the client must
		// honour it rather than its default read timeout.
		ContextTimeoutEnabled: true,
	}
	if opts.DB, err = parseDB(u.Path); err != nil {
		return nil, "", fmt.Errorf("redis URL %q: %w", shown, err)
	}
	// url.Values drops the pairs it cannot unescape: a parameter that was meant would be
	// silently ignored.
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, "", fmt.Errorf("redis URL %q: a query parameter is not escaped right (%v)", shown, err)
	}
	for _, name := range slices.Sorted(maps.Keys(q)) { // the same error every time
		switch {
		case name == "master" && kind == Sentinel,
			(name == "sentinel_username" || name == "sentinel_password") && kind == Sentinel:
		default:
			return nil, "", fmt.Errorf("redis URL %q: unknown query parameter %q", shown, name)
		}
	}
	switch kind {
	case Sentinel:
		opts.MasterName = q.Get("master")
		if opts.MasterName == "" {
			return nil, "", fmt.Errorf("redis URL %q: a Sentinel URL needs ?master=NAME, the name the sentinels monitor", shown)
		}
		opts.SentinelUsername = q.Get("sentinel_username")
		if opts.SentinelPassword, err = secret("sentinel password", q.Get("sentinel_password"), s.SentinelPasswordFile, s.SentinelPassword); err != nil {
			return nil, "", fmt.Errorf("redis URL %q: %w", shown, err)
		}
	case Cluster:
		if opts.DB != 0 {
			return nil, "", fmt.Errorf("redis URL %q: a Cluster has database 0 only, not %d", shown, opts.DB)
		}
		opts.IsClusterMode = true // even with one seed address
	}
	if opts.Password, err = secret("password", pass, s.PasswordFile, s.Password); err != nil {
		return nil, "", fmt.Errorf("redis URL %q: %w", shown, err)
	}
	if useTLS {
		if opts.TLSConfig, err = s.TLS.Config(); err != nil {
			return nil, "", fmt.Errorf("redis TLS: %w", err)
		}
	} else if s.TLS.Any() {
		return nil, "", fmt.Errorf("redis URL %q: TLS files are set but %s:// does not use TLS; use rediss%s://", shown, scheme, strings.TrimPrefix(scheme, "redis"))
	}
	return opts, kind, nil
}

// cutUserinfo splits the user info off what follows a URL's scheme. A password may hold any
// character but "?" unescaped: the user info ends at the last "@" before the query.
func cutUserinfo(rest string) (userinfo, after string) {
	beforeQuery, _, _ := strings.Cut(rest, "?")
	if at := strings.LastIndex(beforeQuery, "@"); at >= 0 {
		return rest[:at], rest[at+1:]
	}
	return "", rest
}

// placeholderUser keeps a user info's shape for url.Parse (so a query parses the same)
// without handing it the secret.
func placeholderUser(userinfo string) string {
	if userinfo == "" {
		return ""
	}
	return "u@"
}

func splitUserinfo(userinfo string) (user, pass string, err error) {
	if userinfo == "" {
		return "", "", nil
	}
	u, p, _ := strings.Cut(userinfo, ":")
	if user, err = url.PathUnescape(u); err != nil {
		return "", "", errors.New("malformed user name: escape it as %XX")
	}
	if pass, err = url.PathUnescape(p); err != nil {
		return "", "", errors.New("malformed password: escape it as %XX")
	}
	return user, pass, nil
}

func splitHosts(list string) ([]string, error) {
	if list == "" {
		return nil, errors.New("no host")
	}
	var addrs []string
	for _, h := range strings.Split(list, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			// A host without a port takes Redis' default.
			if strings.Contains(err.Error(), "missing port") {
				host, port, err = strings.Trim(h, "[]"), "6379", nil
			} else {
				return nil, fmt.Errorf("host %q: want host:port", h)
			}
		}
		if host == "" {
			return nil, fmt.Errorf("host %q: empty host name", h)
		}
		if strings.ContainsAny(host, "[]") {
			// Left over from a host without a port ("a]b"): the dialer would refuse it.
			return nil, fmt.Errorf("host %q: want host:port, or [IPv6]:port", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("host %q: port %q is not a number from 1 to 65535", h, port)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	return addrs, nil
}

func parseDB(path string) (int, error) {
	p := strings.Trim(path, "/")
	if p == "" {
		return 0, nil
	}
	db, err := strconv.Atoi(p)
	if err != nil || db < 0 {
		return 0, fmt.Errorf("database %q is not a number", p)
	}
	return db, nil
}

// secret picks a password from the URL, a file or the fallback (the environment), in that
// order; the URL and a file together are refused, since one of them would be ignored.
func secret(what, inURL, file, fallback string) (string, error) {
	if file != "" {
		if inURL != "" {
			return "", fmt.Errorf("the %s is given both in the URL and in a file (%s); give it once", what, file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read the %s file: %w", what, err)
		}
		p := strings.TrimSpace(string(b))
		if p == "" {
			return "", fmt.Errorf("the %s file %s is empty", what, file)
		}
		return p, nil
	}
	if inURL != "" {
		return inURL, nil
	}
	return fallback, nil
}

// Redact hides the passwords of a Redis URL (in the user info and in every sentinel_password
// parameter), whatever else is wrong with it, so that it can be printed.
func Redact(s string) string {
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if userinfo, after := cutUserinfo(rest); userinfo != "" {
			user, _, hasPass := strings.Cut(userinfo, ":")
			if hasPass {
				user += ":xxxxx"
			}
			s = scheme + "://" + user + "@" + after
		}
	} else if strings.Contains(s, "@") {
		// No scheme: whatever precedes the last "@" may be a secret.
		s = "xxxxx" + s[strings.LastIndex(s, "@"):]
	}
	// Every sentinel_password parameter, not only the first: url.Values keeps them all (and
	// Options uses the first), and a name may be escaped ("sentinel%5Fpassword") and still
	// be read as that parameter. A value may hold "?": only "&" ends it.
	params := strings.Split(s, "&")
	for i, p := range params {
		name, _, ok := strings.Cut(p, "=")
		key := name
		if _, q, found := strings.Cut(name, "?"); found {
			key = q // the first parameter: the query begins after the first "?"
		}
		if n, err := url.QueryUnescape(key); ok && (strings.HasSuffix(name, "sentinel_password") || err == nil && n == "sentinel_password") {
			params[i] = name + "=xxxxx"
		}
	}
	return strings.Join(params, "&")
}

// Logger adapts a slog.Logger to go-redis' logger, which go-redis' pools write to with
// Printf, once per failed dial, on stderr unless told otherwise. The runner reports an
// unreachable Redis itself, once per outage, so these lines go to debug level. go-redis
// has only a process-wide logger (redis.SetLogger): main sets it, once per process.
type Logger struct {
	// Log receives go-redis' lines at debug level.
	Log *slog.Logger
}

// Printf logs one of go-redis' lines.
func (l Logger) Printf(ctx context.Context, format string, v ...any) {
	l.Log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}
