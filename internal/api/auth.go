package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// Role is what a token may do.
type Role int

// The roles, each allowing what the one before allows.
const (
	// RoleNone may read only the probes.
	RoleNone Role = iota
	// RoleRead may read everything: jobs, runs, output, nodes, the audit log, metrics.
	RoleRead
	// RoleOperate may also act: trigger, pause, resume, backfill.
	RoleOperate
)

func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleOperate:
		return "operate"
	}
	return "none"
}

// Token is a bearer token with its name (who acts, in the audit log) and role.
type Token struct {
	Name string
	Role Role
	hash [sha256.Size]byte
}

// minSecret is the shortest secret accepted: a token guessed is a fleet steered.
const minSecret = 16

// ParseTokens reads tokens, one per line as "ROLE NAME SECRET" (ROLE read or operate;
// blank lines and lines starting with # are skipped). source names where they came from in
// errors, which never show a secret.
func ParseTokens(source string, data []byte) ([]Token, error) {
	var out []Token
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want ROLE NAME SECRET (3 fields), found %d", source, line, len(f))
		}
		var t Token
		switch f[0] {
		case "read":
			t.Role = RoleRead
		case "operate":
			t.Role = RoleOperate
		default:
			return nil, fmt.Errorf("%s:%d: role %q: want read or operate", source, line, f[0])
		}
		if len(f[2]) < minSecret {
			return nil, fmt.Errorf("%s:%d: the secret of %q has %d characters; at least %d (e.g. openssl rand -hex 32)", source, line, f[1], len(f[2]), minSecret)
		}
		t.Name, t.hash = f[1], sha256.Sum256([]byte(f[2]))
		for _, o := range out {
			if o.Name == t.Name {
				return nil, fmt.Errorf("%s:%d: a second token named %q", source, line, t.Name)
			}
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return out, nil
}

// LoadTokens reads the tokens of file (if not empty) and of the environment variable
// TokensEnv (if set, lines separated by newlines or semicolons).
func LoadTokens(file string) ([]Token, error) {
	var out []Token
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("http tokens: %w", err)
		}
		if out, err = ParseTokens(file, b); err != nil {
			return nil, fmt.Errorf("http tokens: %w", err)
		}
	}
	if env, ok := os.LookupEnv(TokensEnv); ok {
		ts, err := ParseTokens("$"+TokensEnv, []byte(strings.ReplaceAll(env, ";", "\n")))
		if err != nil {
			return nil, fmt.Errorf("http tokens: %w", err)
		}
		out = append(out, ts...)
	}
	return out, nil
}

// TokensEnv is the environment variable that may hold tokens, as a tokens file does.
const TokensEnv = "CRONFLEET_HTTP_TOKENS"

// principal is who makes a request.
type principal struct {
	name string
	role Role
}

type principalKey struct{}

func principalOf(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// cookieName holds a browser's token, set by the login page.
const cookieName = "cronfleet_token"

// authenticate finds who makes r: the holder of the token it carries, anyone on a loopback
// node without tokens, or no one.
func (s *Server) authenticate(r *http.Request) principal {
	if len(s.cfg.Tokens) == 0 {
		return principal{name: "anonymous", role: RoleOperate} // only ever on loopback: see Listen
	}
	secret, ok := bearer(r)
	if !ok {
		return principal{}
	}
	h := sha256.Sum256([]byte(secret))
	var found principal
	for _, t := range s.cfg.Tokens {
		// Every token is compared, whichever matches, so the time taken tells nothing.
		if subtle.ConstantTimeCompare(h[:], t.hash[:]) == 1 {
			found = principal{name: t.Name, role: t.Role}
		}
	}
	return found
}

// bearer returns the token of r's Authorization header, or else of its cookie.
func bearer(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		return strings.TrimSpace(tok), ok && strings.EqualFold(scheme, "Bearer")
	}
	if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
		return c.Value, true
	}
	return "", false
}

// actor names who acts in the audit log: the token's name and the client's address.
func actor(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return fmt.Sprintf("%s (%s)", principalOf(r.Context()).name, host)
}
