// Package webui is the node's web dashboard, served by `myst daemon` on
// its Tequilapi address: server-rendered pages (html/template) and a small
// hand-written script, all embedded in the binary, that read and change
// the node only through documented Tequilapi routes with the session
// cookie of POST /auth/session. The pages make no request to any other
// origin (the Content-Security-Policy forbids it).
package webui

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/openmyst/openmyst/tequilapi"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Sessions tells whether a request carries a valid session cookie and
// the CSRF token that goes with it; *tequilapi.Server implements it.
type Sessions interface {
	Session(r *http.Request) (csrf string, ok bool)
}

// ContentSecurityPolicy is sent with every page: scripts, styles,
// images and connections only from the node itself, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Page paths.
const (
	PathLogin    = "/ui/login"
	PathProvider = "/ui/provider"
	PathConsumer = "/ui/consumer"
	PathSettings = "/ui/settings"
)

// page is the data every template gets.
type page struct {
	Title   string
	Nav     string
	CSRF    string
	Version string
}

// Routes are the UI's pages and assets: GET / (to the provider page, or
// the login page without a session), the pages under /ui/ and the
// embedded assets under /ui/assets/. The pages are public routes that
// redirect to the login page without a valid session; every number they
// show is read by the script from a documented Tequilapi route.
func Routes(sess Sessions, version string, log *slog.Logger) []tequilapi.Route {
	if log == nil {
		log = slog.Default()
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"login", "provider", "consumer", "settings"} {
		pages[name] = template.Must(template.ParseFS(templateFS, "templates/layout.html", "templates/nat.html", "templates/caps.html", "templates/start.html", "templates/period.html", "templates/"+name+".html"))
	}
	render := func(w http.ResponseWriter, name string, p page) {
		var b strings.Builder
		if err := pages[name].ExecuteTemplate(&b, "layout", p); err != nil {
			log.Error("webui: render", "page", name, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		setHeaders(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(b.String()))
	}
	authed := func(name, title string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			csrf, ok := sess.Session(r)
			if !ok {
				http.Redirect(w, r, PathLogin, http.StatusSeeOther)
				return
			}
			render(w, name, page{Title: title, Nav: name, CSRF: csrf, Version: version})
		}
	}
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	files := http.StripPrefix("/ui/assets/", http.FileServerFS(sub))
	op := func(s string) tequilapi.Operation {
		return tequilapi.Operation{Summary: s, Tags: []string{"ui"}, ContentType: "text/html", Status: http.StatusOK}
	}
	return []tequilapi.Route{
		{Method: http.MethodGet, Path: "/{$}", Public: true,
			Op: tequilapi.Operation{Summary: "Web UI: redirects (303) to the provider page (or the login page)", Tags: []string{"ui"}, Status: http.StatusSeeOther},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				to := PathProvider
				if _, ok := sess.Session(r); !ok {
					to = PathLogin
				}
				http.Redirect(w, r, to, http.StatusSeeOther)
			}},
		{Method: http.MethodGet, Path: PathLogin, Public: true, Op: op("Web UI: login page (303 to the provider page with a session)"),
			Handler: func(w http.ResponseWriter, r *http.Request) {
				if _, ok := sess.Session(r); ok {
					http.Redirect(w, r, PathProvider, http.StatusSeeOther)
					return
				}
				render(w, "login", page{Title: "Log in", Nav: "login", Version: version})
			}},
		{Method: http.MethodGet, Path: PathProvider, Public: true, Op: op("Web UI: provider page (303 to the login page without a session)"), Handler: authed("provider", "Provider")},
		{Method: http.MethodGet, Path: PathConsumer, Public: true, Op: op("Web UI: consumer page (303 to the login page without a session)"), Handler: authed("consumer", "Consumer")},
		{Method: http.MethodGet, Path: PathSettings, Public: true, Op: op("Web UI: settings page (303 to the login page without a session)"), Handler: authed("settings", "Settings")},
		{Method: http.MethodGet, Path: "/ui/assets/{file...}", Public: true,
			Op: tequilapi.Operation{Summary: "Web UI: embedded script and style sheet", Tags: []string{"ui"}, ContentType: "*/*"},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				setHeaders(w)
				w.Header().Set("Cache-Control", "no-cache")
				files.ServeHTTP(w, r)
			}},
	}
}

func setHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}
