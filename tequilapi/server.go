package tequilapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/internal/httpserve"
)

// Default listen address and port.
const (
	DefaultAddress = "127.0.0.1"
	DefaultPort    = 4050
)

// Operation documents a route in the OpenAPI document.
type Operation struct {
	// Summary is a one-line description.
	Summary string
	// Tags group operations.
	Tags []string
	// Request is a value of the request body type (nil: no body).
	Request any
	// Response is a value of the success response body type (nil: no body).
	Response any
	// Status is the success status (default 200).
	Status int
	// Errors lists extra error statuses the route can answer with (400,
	// 401, 413 and 500 are documented for every route that applies).
	Errors []int
	// ContentType is the success media type when it is not JSON (e.g.
	// text/event-stream, text/html); the body is then documented as a
	// string.
	ContentType string
}

// Route is one endpoint.
type Route struct {
	// Method is the HTTP method, e.g. http.MethodGet.
	Method string
	// Path is a net/http ServeMux path pattern, e.g. "/identities/{id}".
	Path string
	// Public routes need no token.
	Public bool
	// Op documents the route.
	Op Operation
	// Handler serves the route; read path values with r.PathValue.
	Handler http.HandlerFunc
}

// Config configures a Server.
type Config struct {
	// Address is the IP to listen on (default 127.0.0.1).
	Address string
	// Port is the TCP port (default 4050; 0 picks a free port).
	Port int
	// AllowRemote permits a non-loopback Address.
	AllowRemote bool
	// PasswordFile holds the password (see EnsurePassword); required.
	PasswordFile string
	// MaxBodyBytes limits request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// TokenTTL is the lifetime of login tokens (default DefaultTokenTTL).
	TokenTTL time.Duration
	// Version is reported by /healthcheck.
	Version string
	// Log receives request and error logs (default slog.Default()).
	Log *slog.Logger
}

// Server is the Tequilapi HTTP server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	auth    *auth
	started time.Time

	mu     sync.Mutex
	mux    *http.ServeMux
	routes []Route
}

// New returns a server with the built-in routes (healthcheck, auth,
// openapi.json). The password file must exist (EnsurePassword).
func New(cfg Config) (*Server, error) {
	cfg.Address = cmp.Or(cfg.Address, DefaultAddress)
	cfg.MaxBodyBytes = defaults.Positive(cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	cfg.TokenTTL = defaults.Positive(cfg.TokenTTL, DefaultTokenTTL)
	cfg.Log = cmp.Or(cfg.Log, slog.Default())
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("tequilapi: port %d out of range", cfg.Port)
	}
	if err := checkAddress(cfg.Address, cfg.AllowRemote); err != nil {
		return nil, err
	}
	if cfg.PasswordFile == "" {
		return nil, errors.New("tequilapi: no password file configured")
	}
	a, err := newAuth(cfg.PasswordFile, cfg.TokenTTL)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Log, auth: a, started: time.Now(), mux: http.NewServeMux()}
	s.Add(s.healthRoutes()...)
	s.Add(s.authRoutes()...)
	s.Add(s.openAPIRoute())
	return s, nil
}

func checkAddress(addr string, allowRemote bool) error {
	if addr == "localhost" {
		return nil
	}
	ip := net.ParseIP(addr)
	if ip == nil {
		return fmt.Errorf("tequilapi: address %q is not an IP address", addr)
	}
	if !ip.IsLoopback() && !allowRemote {
		return fmt.Errorf("tequilapi: refusing to listen on non-loopback address %s without --tequilapi.allow-remote", addr)
	}
	return nil
}

// Add registers routes. Like net/http.Handle it panics on a malformed or
// conflicting route, which is a programming error.
func (s *Server) Add(routes ...Route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range routes {
		if rt.Handler == nil || rt.Method == "" || !strings.HasPrefix(rt.Path, "/") {
			panic(fmt.Sprintf("tequilapi: bad route %s %s", rt.Method, rt.Path))
		}
		s.mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt))
		s.routes = append(s.routes, rt)
	}
}

// Routes returns the registered routes in registration order.
func (s *Server) Routes() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Route(nil), s.routes...)
}

// wrap adds panic recovery, the body limit and auth to a route.
func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				WriteError(w, s.log, fmt.Errorf("panic in %s %s: %v", rt.Method, rt.Path, p))
			}
		}()
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		if !rt.Public {
			if err := s.auth.check(r); err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tequilapi"`)
				WriteError(w, s.log, err)
				return
			}
		}
		rt.Handler(w, r)
	})
}

// Handler returns the HTTP handler: the routes plus JSON answers for
// unknown paths (404) and wrong methods (405).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		s.serve(sw, r)
		s.log.Debug("tequilapi: request", "method", r.Method, "path", r.URL.Path, "status", sw.code(), "took", time.Since(start))
	})
}

// loopbackHost reports whether the Host header names this machine by a
// loopback name (localhost or a loopback IP), with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// A loopback-only API answers only requests addressed to a loopback
	// name, so a web page cannot reach it through DNS rebinding.
	if !s.cfg.AllowRemote && !loopbackHost(r.Host) {
		WriteError(w, s.log, NewError(http.StatusForbidden, CodeForbidden, "Host "+r.Host+" is not a loopback address"))
		return
	}
	s.mu.Lock()
	mux := s.mux
	s.mu.Unlock()
	h, pattern := mux.Handler(r)
	if pattern != "" {
		// ServeHTTP (not h) so that r.PathValue works in handlers.
		mux.ServeHTTP(w, r)
		return
	}
	// The mux's own answer (404, 405 or a path-cleaning redirect):
	// capture it and send it in the JSON error shape.
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch {
	case rec.status == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		WriteError(w, s.log, NewError(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow"))))
	case rec.status >= 300 && rec.status < 400:
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
	default:
		WriteError(w, s.log, NewError(http.StatusNotFound, CodeNotFound, "no route "+r.Method+" "+r.URL.Path))
	}
}

// recorder captures the mux's fallback answers.
type recorder struct {
	header http.Header
	status int
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(b), nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Listen opens the configured TCP listener.
func (s *Server) Listen() (net.Listener, error) {
	addr := net.JoinHostPort(s.cfg.Address, strconv.Itoa(s.cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tequilapi: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves on ln until ctx is done, then shuts down gracefully
// (waiting up to 5s for requests in flight). It returns nil after a
// shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if err := httpserve.Serve(ctx, srv, ln, 5*time.Second); err != nil {
		return fmt.Errorf("tequilapi: %w", err)
	}
	return nil
}

// HealthcheckResponse is the answer of GET /healthcheck.
type HealthcheckResponse struct {
	// Version is the node version.
	Version string `json:"version"`
	// Uptime is the time since start, e.g. 1h2m3s.
	Uptime string `json:"uptime" doc:"Go duration, e.g. 1h2m3s"`
	// UptimeSeconds is Uptime in whole seconds.
	UptimeSeconds int64 `json:"uptime_seconds"`
	// StartedAt is when the API started (UTC).
	StartedAt time.Time `json:"started_at"`
}

func (s *Server) healthRoutes() []Route {
	return []Route{{
		Method: http.MethodGet, Path: "/healthcheck", Public: true,
		Op: Operation{Summary: "Node version and uptime", Tags: []string{"node"}, Response: HealthcheckResponse{}},
		Handler: func(w http.ResponseWriter, _ *http.Request) {
			up := time.Since(s.started)
			WriteJSON(w, http.StatusOK, HealthcheckResponse{
				Version: s.cfg.Version, Uptime: up.Round(time.Second).String(),
				UptimeSeconds: int64(up.Seconds()), StartedAt: s.started.UTC(),
			})
		},
	}}
}
