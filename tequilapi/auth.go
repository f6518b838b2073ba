package tequilapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openmyst/openmyst/config"
)

// Username is the only Tequilapi user.
const Username = "myst"

// PasswordFileName is the password file inside the data dir.
const PasswordFileName = "tequilapi.password"

// MinPasswordLength is the shortest password PUT /auth/password accepts.
const MinPasswordLength = 10

// SessionCookie is the cookie POST /auth/session sets for the web UI.
const SessionCookie = "myst_session"

// CSRFHeader carries CSRFToken(session) on cookie-authenticated requests
// that may change state.
const CSRFHeader = "X-CSRF-Token"

// DefaultTokenTTL is how long a login token stays valid.
const DefaultTokenTTL = 24 * time.Hour

// maxLoginBackoff caps the delay imposed after failed logins.
const maxLoginBackoff = 10 * time.Second

// EnsurePassword reads the password file at path, creating it (mode 0600)
// with a random password if it does not exist. created reports whether
// this call generated it, so the caller can show it once.
func EnsurePassword(path string) (password string, created bool, err error) {
	pw, err := readPassword(path)
	if err == nil {
		return pw, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	buf := make([]byte, 18)
	if _, err := rand.Read(buf); err != nil {
		return "", false, fmt.Errorf("tequilapi: generate password: %w", err)
	}
	pw = base64.RawURLEncoding.EncodeToString(buf)
	if err := writePassword(path, pw, false); err != nil {
		return "", false, err
	}
	return pw, true, nil
}

// ReadPassword reads the password file at path (for clients on the same
// machine, like the myst CLI).
func ReadPassword(path string) (string, error) { return readPassword(path) }

func readPassword(path string) (string, error) {
	pw, err := config.ReadSecretFile(path, "password")
	if err != nil {
		return "", fmt.Errorf("tequilapi: %w", err)
	}
	return pw, nil
}

// writePassword writes pw to path with mode 0600, durably; replace says
// whether an existing file may be replaced.
func writePassword(path, pw string, replace bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tequilapi: create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("tequilapi: write password file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(pw + "\n")
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		if replace {
			werr = os.Rename(tmp.Name(), path)
		} else {
			werr = os.Link(tmp.Name(), path)
		}
	}
	if werr != nil {
		return fmt.Errorf("tequilapi: write password file %s: %w", path, werr)
	}
	return nil
}

// auth holds the password, issued tokens and the login backoff.
type auth struct {
	path string
	ttl  time.Duration
	now  func() time.Time

	mu        sync.Mutex
	pwHash    [32]byte
	tokens    map[[32]byte]time.Time // sha256(token) → expiry
	failures  int
	notBefore time.Time
}

func newAuth(path string, ttl time.Duration) (*auth, error) {
	pw, err := readPassword(path)
	if err != nil {
		return nil, err
	}
	return &auth{path: path, ttl: ttl, now: time.Now, pwHash: sha256.Sum256([]byte(pw)), tokens: map[[32]byte]time.Time{}}, nil
}

func (a *auth) passwordOK(pw string) bool {
	h := sha256.Sum256([]byte(pw))
	return subtle.ConstantTimeCompare(h[:], a.pwHash[:]) == 1
}

// login checks the credentials, applying exponential backoff after
// failures, and returns a new token.
func (a *auth) login(user, pw string) (string, time.Time, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if wait := a.notBefore.Sub(now); wait > 0 {
		e := NewError(http.StatusTooManyRequests, CodeTooManyRequests, fmt.Sprintf("too many failed logins, retry in %s", wait.Round(time.Millisecond)))
		return "", time.Time{}, &retryAfterError{APIError: e, after: wait}
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(Username)) == 1
	if !a.passwordOK(pw) || !userOK {
		a.failures++
		backoff := time.Duration(float64(100*time.Millisecond) * math.Pow(2, float64(min(a.failures-1, 16))))
		a.notBefore = now.Add(min(backoff, maxLoginBackoff))
		return "", time.Time{}, NewError(http.StatusUnauthorized, CodeUnauthorized, "wrong username or password")
	}
	a.failures = 0
	a.notBefore = time.Time{}
	for h, exp := range a.tokens {
		if !now.Before(exp) {
			delete(a.tokens, h)
		}
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", time.Time{}, fmt.Errorf("tequilapi: generate token: %w", err)
	}
	tok := hex.EncodeToString(buf)
	exp := now.Add(a.ttl)
	a.tokens[sha256.Sum256([]byte(tok))] = exp
	return tok, exp, nil
}

// check validates the request's credentials: an Authorization bearer
// token, or the session cookie (see checkCookie for what a cookie request
// must also carry).
func (a *auth) check(r *http.Request) error {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if h == "" {
		if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			return a.checkCookie(r, c.Value)
		}
	}
	if !ok || tok == "" {
		return NewError(http.StatusUnauthorized, CodeUnauthorized, "missing bearer token: log in with POST /auth/login and send Authorization: Bearer <token>")
	}
	return a.checkToken(tok)
}

// checkCookie validates a session cookie's token. A browser sends cookies
// with every request to this origin, so a request that may change state
// (any method but GET, HEAD and OPTIONS) must also prove it comes from a
// page of this origin: an Origin header, if present, naming the request's
// Host, and the X-CSRF-Token header holding CSRFToken(token), which only
// a page that could read the session can know.
func (a *auth) checkCookie(r *http.Request, tok string) error {
	if err := a.checkToken(tok); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
		return NewError(http.StatusForbidden, CodeForbidden, "cross-origin request from "+o+" refused")
	}
	want := CSRFToken(tok)
	if got := r.Header.Get(CSRFHeader); subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return NewError(http.StatusForbidden, CodeForbidden, "missing or wrong "+CSRFHeader+" header for a cookie-authenticated request")
	}
	return nil
}

// sameOrigin reports whether the Origin header value names host (the
// request's Host header) over http or https.
func sameOrigin(origin, host string) bool {
	rest, ok := strings.CutPrefix(origin, "http://")
	if !ok {
		rest, ok = strings.CutPrefix(origin, "https://")
	}
	return ok && strings.EqualFold(rest, host)
}

// CSRFToken is the anti-forgery token that goes with a session token: a
// hash a page can only learn from the server (the web UI renders it), so
// a forged cross-site request cannot carry it.
func CSRFToken(sessionToken string) string {
	h := sha256.Sum256([]byte("openmyst-csrf\x00" + sessionToken))
	return hex.EncodeToString(h[:16])
}

// revoke forgets a token (logout).
func (a *auth) revoke(tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.tokens, sha256.Sum256([]byte(tok)))
}

// checkToken validates a token.
func (a *auth) checkToken(tok string) error {
	key := sha256.Sum256([]byte(tok))
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.tokens[key]
	if !ok {
		return NewError(http.StatusUnauthorized, CodeUnauthorized, "invalid token")
	}
	if !a.now().Before(exp) {
		delete(a.tokens, key)
		return NewError(http.StatusUnauthorized, CodeUnauthorized, "token expired, log in again")
	}
	return nil
}

// changePassword replaces the password (durably) and revokes all tokens.
func (a *auth) changePassword(current, next string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.passwordOK(current) {
		return &APIError{Status: http.StatusForbidden, Body: ErrorBody{
			Code: CodeForbidden, Message: "current password is wrong", Fields: map[string]string{"current_password": "wrong password"},
		}}
	}
	if err := writePassword(a.path, next, true); err != nil {
		return err
	}
	a.pwHash = sha256.Sum256([]byte(next))
	clear(a.tokens)
	return nil
}

// retryAfterError is a 429 that also sets Retry-After.
type retryAfterError struct {
	*APIError
	after time.Duration
}

func (e *retryAfterError) retryAfter() string {
	return strconv.Itoa(int(math.Ceil(e.after.Seconds())))
}

// LoginRequest is the body of POST /auth/login.
type LoginRequest struct {
	// Username must be "myst".
	Username string `json:"username" doc:"always \"myst\""`
	// Password is the content of the password file.
	Password string `json:"password"`
}

// LoginResponse is the answer of POST /auth/login.
type LoginResponse struct {
	// Token is the bearer token.
	Token string `json:"token" doc:"send as Authorization: Bearer <token>"`
	// ExpiresAt is when Token stops working.
	ExpiresAt time.Time `json:"expires_at"`
}

// ChangePasswordRequest is the body of PUT /auth/password.
type ChangePasswordRequest struct {
	// CurrentPassword is the password in use.
	CurrentPassword string `json:"current_password"`
	// NewPassword replaces it (at least MinPasswordLength characters).
	NewPassword string `json:"new_password" doc:"at least 10 characters"`
}

// Validate implements Validator.
func (r *ChangePasswordRequest) Validate() error {
	if len(r.NewPassword) < MinPasswordLength {
		return FieldError("new_password", fmt.Sprintf("must be at least %d characters", MinPasswordLength))
	}
	if strings.ContainsAny(r.NewPassword, "\r\n") {
		return FieldError("new_password", "must not contain line breaks")
	}
	return nil
}

// SessionResponse is the answer of POST /auth/session.
type SessionResponse struct {
	// ExpiresAt is when the session cookie stops working.
	ExpiresAt time.Time `json:"expires_at"`
	// CSRFToken goes in the X-CSRF-Token header of every request that
	// may change state (any method but GET and HEAD).
	CSRFToken string `json:"csrf_token" doc:"send as X-CSRF-Token on POST, PUT and DELETE"`
}

// Session reports whether r carries a valid session cookie and, if so,
// the CSRF token that goes with it (for the web UI's pages).
func (s *Server) Session(r *http.Request) (csrf string, ok bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" || s.auth.checkToken(c.Value) != nil {
		return "", false
	}
	return CSRFToken(c.Value), true
}

// login decodes a LoginRequest and logs in, answering the error itself.
func (s *Server) login(w http.ResponseWriter, r *http.Request) (string, time.Time, bool) {
	var req LoginRequest
	if err := DecodeJSON(r, &req); err != nil {
		WriteError(w, s.log, err)
		return "", time.Time{}, false
	}
	tok, exp, err := s.auth.login(req.Username, req.Password)
	if err != nil {
		var ra *retryAfterError
		if errors.As(err, &ra) {
			w.Header().Set("Retry-After", ra.retryAfter())
			err = ra.APIError
		}
		s.log.Warn("tequilapi: failed login", "remote", r.RemoteAddr)
		WriteError(w, s.log, err)
		return "", time.Time{}, false
	}
	return tok, exp, true
}

func (s *Server) authRoutes() []Route {
	return []Route{
		{
			Method: http.MethodPost, Path: "/auth/login", Public: true,
			Op: Operation{Summary: "Log in as user myst and get a bearer token", Tags: []string{"auth"},
				Request: LoginRequest{}, Response: LoginResponse{}, Errors: []int{http.StatusTooManyRequests}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				if tok, exp, ok := s.login(w, r); ok {
					WriteJSON(w, http.StatusOK, LoginResponse{Token: tok, ExpiresAt: exp.UTC()})
				}
			},
		},
		{
			Method: http.MethodPost, Path: "/auth/session", Public: true,
			Op: Operation{Summary: "Log in as user myst and get an HttpOnly, SameSite=Strict session cookie (for the web UI)", Tags: []string{"auth"},
				Request: LoginRequest{}, Response: SessionResponse{}, Errors: []int{http.StatusForbidden, http.StatusTooManyRequests}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				// A login form on another site must not plant a session.
				if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
					WriteError(w, s.log, NewError(http.StatusForbidden, CodeForbidden, "cross-origin login from "+o+" refused"))
					return
				}
				tok, exp, ok := s.login(w, r)
				if !ok {
					return
				}
				http.SetCookie(w, &http.Cookie{
					Name: SessionCookie, Value: tok, Path: "/", Expires: exp, MaxAge: int(time.Until(exp).Seconds()),
					HttpOnly: true, SameSite: http.SameSiteStrictMode,
				})
				WriteJSON(w, http.StatusOK, SessionResponse{ExpiresAt: exp.UTC(), CSRFToken: CSRFToken(tok)})
			},
		},
		{
			Method: http.MethodDelete, Path: "/auth/session",
			Op: Operation{Summary: "Log out: revoke the session cookie's (or bearer) token and clear the cookie", Tags: []string{"auth"},
				Status: http.StatusNoContent, Errors: []int{http.StatusForbidden}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
					s.auth.revoke(tok)
				} else if c, err := r.Cookie(SessionCookie); err == nil {
					s.auth.revoke(c.Value)
				}
				http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
				w.WriteHeader(http.StatusNoContent)
			},
		},
		{
			Method: http.MethodPut, Path: "/auth/password",
			Op: Operation{Summary: "Change the password; revokes every token", Tags: []string{"auth"},
				Request: ChangePasswordRequest{}, Status: http.StatusNoContent},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				var req ChangePasswordRequest
				if err := DecodeJSON(r, &req); err != nil {
					WriteError(w, s.log, err)
					return
				}
				if err := s.auth.changePassword(req.CurrentPassword, req.NewPassword); err != nil {
					WriteError(w, s.log, err)
					return
				}
				s.log.Info("tequilapi: password changed, all tokens revoked")
				w.WriteHeader(http.StatusNoContent)
			},
		},
	}
}
