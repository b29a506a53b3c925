package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cronfleet/cronfleet/internal/cron"
	"github.com/cronfleet/cronfleet/internal/fleet"
)

// routes is every path the server answers, with the role each needs.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	open := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, h) }
	read := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.need(RoleRead, h)) }
	operate := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.need(RoleOperate, h)) }

	open("GET /healthz", s.healthz)
	open("GET /readyz", s.readyz)
	read("GET /metrics", s.metrics.ServeHTTP)

	read("GET /v1/jobs", s.listJobs)
	read("GET /v1/jobs/{name}", s.getJob)
	read("GET /v1/jobs/{name}/runs", s.jobRuns)
	read("GET /v1/runs/{occurrence}", s.getRun)
	read("GET /v1/runs/{occurrence}/output", s.runOutput)
	read("GET /v1/nodes", s.listNodes)
	read("GET /v1/audit", s.auditLog)
	operate("POST /v1/jobs/{name}/trigger", s.trigger)
	operate("POST /v1/jobs/{name}/pause", s.pause)
	operate("POST /v1/jobs/{name}/resume", s.resume)
	operate("POST /v1/jobs/{name}/backfill", s.backfill)
	// The same paths with any other method, and any other path under /v1/, answer in JSON
	// as the API's other errors do (the mux's own answers are plain text).
	for _, p := range []string{"/v1/jobs", "/v1/jobs/{name}", "/v1/jobs/{name}/runs", "/v1/runs/{occurrence}", "/v1/runs/{occurrence}/output", "/v1/nodes", "/v1/audit"} {
		open(p, methodNotAllowed("GET"))
	}
	for _, a := range []string{"trigger", "pause", "resume", "backfill"} {
		open("/v1/jobs/{name}/"+a, methodNotAllowed("POST"))
	}
	open("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path+" (see docs/operate.md)")
	})

	s.dashboardRoutes(mux, read, operate, open)

	// Every state-changing request from a browser must come from the dashboard's own pages.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msg := "cross-origin request refused: an action must come from this dashboard's own pages, or from a client that is not a browser"
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			writeError(w, http.StatusForbidden, msg)
			return
		}
		http.Error(w, msg, http.StatusForbidden)
	}))
	return cop.Handler(mux)
}

// need lets through requests whose principal has role at least.
func (s *Server) need(role Role, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := s.authenticate(r)
		switch {
		case p.role >= role:
			h(w, r.WithContext(withPrincipal(r.Context(), p)))
		case p.role == RoleNone && wantsHTML(r):
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		case p.role == RoleNone:
			w.Header().Set("WWW-Authenticate", `Bearer realm="cronfleet"`)
			msg := "a bearer token is required (Authorization: Bearer TOKEN)"
			if r.Header.Get("Authorization") != "" {
				// Told apart from a missing token, so that a client with a mistyped or
				// revoked token, or another scheme, knows what to fix.
				msg = "the Authorization header holds no token of this fleet's (want Authorization: Bearer TOKEN)"
			}
			writeError(w, http.StatusUnauthorized, msg)
		default:
			writeError(w, http.StatusForbidden, "the token "+strconv.Quote(p.name)+" has the "+p.role.String()+" role; this needs "+role.String())
		}
	})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+": use "+allow)
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": s.cfg.Node, "version": s.cfg.Version})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.ready(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	q, ok := jobQuery(w, r)
	if !ok {
		return
	}
	page, err := s.fleet.Jobs(r.Context(), q)
	if s.failed(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// jobQuery reads the job list's parameters: match, offset and limit.
func jobQuery(w http.ResponseWriter, r *http.Request) (fleet.JobQuery, bool) {
	q := fleet.JobQuery{Match: r.URL.Query().Get("match")}
	var ok bool
	if q.Limit, ok = intParam(w, r, "limit", fleet.DefaultPage); !ok {
		return q, false
	}
	if v := r.URL.Query().Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "query parameter offset="+strconv.Quote(v)+": want 0 or more")
			return q, false
		}
		q.Offset = n
	}
	return q, true
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	n, ok := intParam(w, r, "n", 10)
	if !ok {
		return
	}
	j, err := s.fleet.Job(r.Context(), r.PathValue("name"), n)
	if s.failed(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) jobRuns(w http.ResponseWriter, r *http.Request) {
	n, ok := intParam(w, r, "n", 50)
	if !ok {
		return
	}
	runs, err := s.fleet.History(r.Context(), r.PathValue("name"), n)
	if s.failed(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"job": r.PathValue("name"), "runs": runs})
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	o, err := s.fleet.Occurrence(r.Context(), r.PathValue("occurrence"))
	if s.failed(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// outputLine is one entry of a run's output as the API answers it.
type outputLine struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Text    string    `json:"text"`
	// End, when set, makes the entry the end of its attempt, with the attempt's status.
	End string `json:"end,omitempty"`
	// Final, with End, says no other attempt follows.
	Final bool `json:"final,omitempty"`
}

// maxWait bounds the wait parameter of an output read.
const maxWait = 30 * time.Second

// runOutput is a run's output after a cursor: the lines written so far, waiting up to the
// wait parameter for some when there are none yet and the run goes on.
func (s *Server) runOutput(w http.ResponseWriter, r *http.Request) {
	occ := r.PathValue("occurrence")
	if _, _, err := cron.ParseOccurrenceID(occ); err != nil {
		writeError(w, http.StatusBadRequest, strconv.Quote(occ)+" is not an occurrence id: "+err.Error())
		return
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxWait {
			writeError(w, http.StatusBadRequest, "query parameter wait="+strconv.Quote(v)+": want a duration from 0s to 30s, such as 10s")
			return
		}
		wait = d
	}
	after := r.URL.Query().Get("after")
	if after != "" && !validCursor(after) {
		writeError(w, http.StatusBadRequest, "query parameter after="+strconv.Quote(after)+": want the next of an earlier answer")
		return
	}
	if wait > 0 {
		select {
		case s.waits <- struct{}{}:
			defer func() { <-s.waits }()
		default:
			wait = 0 // enough readers wait already; this one polls
		}
	}
	chunk, err := s.output.ReadOutput(r.Context(), occ, after, wait)
	if s.failed(w, r, err) {
		return
	}
	lines := make([]outputLine, len(chunk.Lines))
	for i, l := range chunk.Lines {
		lines[i] = outputLine{Attempt: l.Attempt, At: l.At, Text: l.Text, End: string(l.End), Final: l.Final}
	}
	writeJSON(w, http.StatusOK, map[string]any{"occurrence": occ, "lines": lines, "next": chunk.Cursor, "ended": chunk.End})
}

// validCursor reports whether c is a stream id, MS-SEQ, as answers give them.
func validCursor(c string) bool {
	ms, seq, ok := strings.Cut(c, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return ok && err1 == nil && err2 == nil
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	nodes, drift, err := s.fleet.Nodes(r.Context())
	if s.failed(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes, "drift": drift})
}

func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) {
	n, ok := intParam(w, r, "n", 100)
	if !ok {
		return
	}
	entries, err := s.fleet.Audit(r.Context(), n)
	if s.failed(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}

func (s *Server) trigger(w http.ResponseWriter, r *http.Request) {
	if !decodeBody(w, r, &struct{}{}) {
		return
	}
	a, err := s.fleet.Trigger(r.Context(), r.PathValue("name"), s.actor(r))
	if s.failed(w, r, err) {
		return
	}
	writeJSON(w, http.StatusAccepted, a)
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Note string `json:"note"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	a, err := s.fleet.Pause(r.Context(), r.PathValue("name"), body.Note, s.actor(r))
	if s.failed(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	if !decodeBody(w, r, &struct{}{}) {
		return
	}
	a, err := s.fleet.Resume(r.Context(), r.PathValue("name"), s.actor(r))
	if s.failed(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) backfill(w http.ResponseWriter, r *http.Request) {
	var req fleet.BackfillRequest
	if !decodeBody(w, r, &req) {
		return
	}
	res, err := s.fleet.Backfill(r.Context(), r.PathValue("name"), req, s.actor(r))
	if s.failed(w, r, err) {
		return
	}
	code := http.StatusAccepted
	if req.DryRun {
		code = http.StatusOK
	}
	writeJSON(w, code, res)
}

func (s *Server) actor(r *http.Request) fleet.Actor { return fleet.Actor{By: actor(r), Via: "http"} }

// failed answers err, if any: the caller's mistake as 4xx, anything else (Redis) as 503,
// logged once here where it is handled.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, err error) bool {
	if err == nil {
		return false
	}
	var ie *fleet.InputError
	switch {
	case errors.As(err, &ie) && ie.NotFound:
		writeError(w, http.StatusNotFound, err.Error())
	case errors.As(err, &ie):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.log.Warn("http request failed: Redis did not answer", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the fleet's Redis did not answer: "+err.Error())
	}
	return true
}

// maxBody bounds a request's body: an action's is a few hundred bytes.
const maxBody = 64 << 10

// decodeBody reads r's JSON body into v; an empty body leaves v as it is. It answers a
// body it cannot read and reports whether to go on.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var mbe *http.MaxBytesError
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case err == nil || errors.Is(err, io.EOF):
		if err == nil && dec.More() {
			writeError(w, http.StatusBadRequest, "the body holds more than one JSON value")
			return false
		}
		return true
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "the body is over "+strconv.Itoa(maxBody)+" bytes")
	case errors.As(err, &te) && te.Field == "":
		// The body as a whole is of the wrong kind; the Go type would mean nothing to a client.
		writeError(w, http.StatusBadRequest, "the body is a JSON "+te.Value+": want a JSON object, such as {}")
	case errors.As(err, &te):
		writeError(w, http.StatusBadRequest, "field "+strconv.Quote(te.Field)+": want a JSON "+te.Type.String())
	case errors.As(err, &pe):
		writeError(w, http.StatusBadRequest, "a time is not RFC 3339, such as 2026-03-01T00:00:00Z: "+strconv.Quote(pe.Value))
	default:
		writeError(w, http.StatusBadRequest, "the body is not the JSON object this action takes: "+err.Error())
	}
	return false
}

// intParam reads the query parameter name as a positive integer, def when absent.
func intParam(w http.ResponseWriter, r *http.Request, name string, def int) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		writeError(w, http.StatusBadRequest, "query parameter "+name+"="+strconv.Quote(v)+": want a positive integer")
		return 0, false
	}
	return n, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// wantsHTML tells a browser's request (a page) from an API client's.
func wantsHTML(r *http.Request) bool {
	return !strings.HasPrefix(r.URL.Path, "/v1/") && r.URL.Path != "/metrics" &&
		strings.Contains(r.Header.Get("Accept"), "text/html")
}
