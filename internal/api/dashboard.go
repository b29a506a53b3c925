package api

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cronfleet/cronfleet/internal/fleet"
	"github.com/cronfleet/cronfleet/internal/queue"
)

//go:embed assets
var assets embed.FS

// pages are the dashboard's parsed templates.
type pages struct {
	tmpl   map[string]*template.Template
	static http.Handler
}

func newPages() (*pages, error) {
	p := &pages{tmpl: map[string]*template.Template{}}
	for _, name := range []string{"jobs", "job", "run", "nodes", "audit", "login"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("api: dashboard template %s: %w", name, err)
		}
		p.tmpl[name] = t
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, fmt.Errorf("api: dashboard assets: %w", err)
	}
	p.static = http.StripPrefix("/static/", http.FileServerFS(static))
	return p, nil
}

// page is what every template gets.
type page struct {
	Title   string
	Node    string
	Version string
	Now     time.Time
	// Operator says the viewer may act; the pages show the buttons only then.
	Operator bool
	// Who is the viewer's name, when tokens are in use.
	Who string
	// Message is the outcome of the action that led here.
	Message string
	// Refresh is how often, in seconds, the page's live part is refreshed; 0 for never.
	Refresh int
	Data    any
	// Failed marks Message as an error rather than an outcome.
	Failed bool
	// status is the answer's HTTP status; 0 means 200.
	status int
}

func (s *Server) dashboardRoutes(mux *http.ServeMux, read, operate, open func(string, http.HandlerFunc)) {
	open("GET /static/", s.pages.static.ServeHTTP)
	open("GET /login", s.loginPage)
	open("POST /login", s.login)
	open("POST /logout", s.logout)
	read("GET /{$}", s.jobsPage)
	read("GET /jobs/{name}", s.jobPage)
	read("GET /runs/{occurrence}", s.runPage)
	read("GET /nodes", s.nodesPage)
	read("GET /audit", s.auditPage)
	operate("POST /jobs/{name}/trigger", s.act("trigger"))
	operate("POST /jobs/{name}/pause", s.act("pause"))
	operate("POST /jobs/{name}/resume", s.act("resume"))
}

// render writes the page name with data, or an error page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, p page) {
	p.Node, p.Version, p.Now = s.cfg.Node, s.cfg.Version, time.Now().UTC()
	pr := principalOf(r.Context())
	p.Operator = pr.role >= RoleOperate
	if len(s.cfg.Tokens) > 0 {
		p.Who = pr.name
	}
	if p.Message == "" {
		p.Message = r.URL.Query().Get("msg")
	}
	var buf bytes.Buffer
	if err := s.pages.tmpl[name].Execute(&buf, p); err != nil {
		s.log.Error("dashboard page failed", "page", name, "err", err)
		http.Error(w, "the page could not be rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if p.status != 0 {
		w.WriteHeader(p.status)
	}
	_, _ = buf.WriteTo(w)
}

// pageFailed renders err as the page's answer: a mistake in the address as 4xx, Redis as 503.
func (s *Server) pageFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	if err == nil {
		return false
	}
	p := page{Title: "error", Message: err.Error(), Failed: true, Data: jobsData{Failed: true}}
	var ie *fleet.InputError
	switch {
	case errors.As(err, &ie) && ie.NotFound:
		p.status = http.StatusNotFound
	case errors.As(err, &ie):
		p.status = http.StatusBadRequest
	default:
		s.log.Warn("dashboard page failed: Redis did not answer", "path", r.URL.Path, "err", err)
		// An outage passes: the page says what failed and tries again by itself, so a
		// dashboard left open shows the fleet again once Redis answers.
		p.status, p.Refresh = http.StatusServiceUnavailable, 5
		p.Message = "The fleet's Redis did not answer (" + err.Error() + "). This page tries again every few seconds."
	}
	s.render(w, r, "jobs", p)
	return true
}

// dashboardPage is how many jobs the job list shows at once.
const dashboardPage = 200

// pageLink is the address of the job list's page from offset, for match.
func pageLink(match string, offset int) string {
	v := url.Values{}
	if match != "" {
		v.Set("match", match)
	}
	if offset > 0 {
		v.Set("offset", strconv.Itoa(offset))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

type jobsData struct {
	Page       *fleet.JobPage
	Match      string
	Prev, Next string
	Nodes      []fleet.Node
	Alive      int
	Drift      bool
	Audit      []queue.AuditEntry
	Failed     bool
}

func (s *Server) jobsPage(w http.ResponseWriter, r *http.Request) {
	q := fleet.JobQuery{Match: r.URL.Query().Get("match"), Limit: dashboardPage}
	if v, err := strconv.Atoi(r.URL.Query().Get("offset")); err == nil && v > 0 {
		q.Offset = v
	}
	jp, err := s.fleet.Jobs(r.Context(), q)
	if s.pageFailed(w, r, err) {
		return
	}
	nodes, drift, err := s.fleet.Nodes(r.Context())
	if s.pageFailed(w, r, err) {
		return
	}
	audit, err := s.fleet.Audit(r.Context(), 5)
	if s.pageFailed(w, r, err) {
		return
	}
	d := jobsData{Page: jp, Match: q.Match, Nodes: nodes, Drift: drift, Audit: audit}
	for _, n := range nodes {
		if n.Alive {
			d.Alive++
		}
	}
	if jp.Offset > 0 {
		d.Prev = pageLink(q.Match, max(0, jp.Offset-jp.Limit))
	}
	if jp.Offset+len(jp.Jobs) < jp.Total {
		d.Next = pageLink(q.Match, jp.Offset+jp.Limit)
	}
	s.render(w, r, "jobs", page{Title: "jobs", Refresh: 2, Data: d})
}

type jobData struct {
	*fleet.JobDetail
	Runs     []fleet.Run
	Timeline *timeline
}

func (s *Server) jobPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	j, err := s.fleet.Job(r.Context(), name, 10)
	if s.pageFailed(w, r, err) {
		return
	}
	runs, err := s.fleet.History(r.Context(), name, 50)
	if s.pageFailed(w, r, err) {
		return
	}
	s.render(w, r, "job", page{Title: name, Refresh: 2, Data: jobData{JobDetail: j, Runs: runs, Timeline: newTimeline(runs, time.Now())}})
}

type runData struct {
	*fleet.Occurrence
	// Output is the output shown when the page loads: the stream's lines so far, or the
	// latest record's once the stream expired.
	Output string
	// Cursor is where the page's script goes on reading the stream ("" from its start).
	Cursor string
	// Ended says no more output comes.
	Ended bool
}

// outputText renders a stream's entries as the run page shows them: the lines, and a note
// where an attempt ended.
func outputText(lines []queue.OutputLine) string {
	var b strings.Builder
	for _, l := range lines {
		if l.End != "" {
			fmt.Fprintf(&b, "[attempt %d ended: %s]\n", l.Attempt, l.End)
			continue
		}
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	o, err := s.fleet.Occurrence(r.Context(), r.PathValue("occurrence"))
	if s.pageFailed(w, r, err) {
		return
	}
	d := runData{Occurrence: o}
	if len(o.Runs) > 0 {
		d.Output = o.Runs[0].Output
	}
	// The stream has every attempt's lines while it lasts (an hour after the run), the
	// record the last ones for longer. Without JavaScript the page's refresh shows the
	// stream's lines as they come.
	chunk, err := s.output.ReadOutput(r.Context(), o.ID, "", 0)
	if s.pageFailed(w, r, err) {
		return
	}
	if len(chunk.Lines) > 0 {
		d.Output = outputText(chunk.Lines)
		d.Cursor = chunk.Cursor
	}
	d.Ended = chunk.End
	refresh := 2
	if d.Ended {
		refresh = 0
	}
	s.render(w, r, "run", page{Title: o.ID, Refresh: refresh, Data: d})
}

func (s *Server) nodesPage(w http.ResponseWriter, r *http.Request) {
	nodes, drift, err := s.fleet.Nodes(r.Context())
	if s.pageFailed(w, r, err) {
		return
	}
	s.render(w, r, "nodes", page{Title: "nodes", Refresh: 2, Data: jobsData{Nodes: nodes, Drift: drift}})
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	entries, err := s.fleet.Audit(r.Context(), 200)
	if s.pageFailed(w, r, err) {
		return
	}
	s.render(w, r, "audit", page{Title: "audit", Refresh: 5, Data: entries})
}

// act is the dashboard's form for an action: it acts as the API does, then shows the job
// page with the outcome.
func (s *Server) act(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "the form could not be read: "+err.Error(), http.StatusBadRequest)
			return
		}
		name := r.PathValue("name")
		var a *fleet.Action
		var err error
		ctx := r.Context()
		switch action {
		case "trigger":
			a, err = s.fleet.Trigger(ctx, name, s.actor(r))
		case "pause":
			a, err = s.fleet.Pause(ctx, name, r.PostFormValue("note"), s.actor(r))
		case "resume":
			a, err = s.fleet.Resume(ctx, name, s.actor(r))
		}
		if s.pageFailed(w, r, err) {
			return
		}
		msg := name + " " + a.Action
		switch {
		case a.Occurrence != "":
			msg += ": " + a.Occurrence + ", due now"
		case a.WasPaused != nil && !*a.WasPaused:
			msg = name + " was not paused"
		case a.Pause != nil:
			msg += " fleet-wide"
		}
		http.Redirect(w, r, "/jobs/"+url.PathEscape(name)+"?msg="+url.QueryEscape(msg), http.StatusSeeOther)
	}
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "login", page{Title: "sign in", Data: r.URL.Query().Get("next")})
}

// login checks the token typed into the login page and keeps it in a cookie, which the
// browser then sends instead of an Authorization header.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read: "+err.Error(), http.StatusBadRequest)
		return
	}
	tok := strings.TrimSpace(r.PostFormValue("token"))
	probe := r.Clone(r.Context())
	probe.Header = http.Header{"Authorization": {"Bearer " + tok}}
	if s.authenticate(probe).role == RoleNone {
		s.render(w, r, "login", page{Title: "sign in", Message: "that token is not one of this fleet's", Data: r.PostFormValue("next"), status: http.StatusUnauthorized})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int((12 * time.Hour).Seconds())})
	next := r.PostFormValue("next")
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func withPrincipal(ctx context.Context, p principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}
