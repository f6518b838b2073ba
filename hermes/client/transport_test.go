package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openmyst/openmyst/hermes/tlstest"
)

// TestHTTPSHermes: the client speaks to a hermes over HTTPS when it trusts
// the CA that signed the hermes's certificate, and refuses a certificate
// from an unknown CA before anything is sent or revealed.
func TestHTTPSHermes(t *testing.T) {
	e := newEnv(t)
	ca := tlstest.New(t, t.TempDir())
	srv := httptest.NewUnstartedServer(e.srv.Config.Handler)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("server URL %s", srv.URL)
	}
	ctx := context.Background()
	hl, db := openHashlocks(t, filepath.Join(t.TempDir(), "node.db"))
	defer db.Close()
	consumer, provider := signer("consumer"), signer("provider").Address()

	// Not trusting the throwaway CA (system pool): the handshake fails.
	o := fastOptions(e)
	o.Attempts = 1
	untrusting := mustNew(t, srv.URL, hl, o)
	h, err := untrusting.NewHashlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := e.requests.Load()
	if _, err := untrusting.RequestPromise(ctx, message(t, consumer, provider, 100, h)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unknown CA: %v, want a certificate error", err)
	}
	if n := e.requests.Load() - before; n != 0 {
		t.Fatalf("%d requests reached the hermes through an untrusted certificate", n)
	}

	o = fastOptions(e)
	o.RootCAs = ca.Pool
	c := mustNew(t, srv.URL, hl, o)
	p, err := c.RequestPromise(ctx, message(t, consumer, provider, 100, h))
	if err != nil || p.Amount.Int64() != 100 {
		t.Fatalf("over https: %v %v", p, err)
	}
	if ent, _ := hl.Get(ctx, h); !ent.Revealed {
		t.Fatal("R not revealed over https")
	}
}

// TestHermesURLPolicy: https:// anywhere; http:// to loopback (devnets);
// http:// elsewhere only when explicitly allowed; nothing else.
func TestHermesURLPolicy(t *testing.T) {
	hl, db := openHashlocks(t, filepath.Join(t.TempDir(), "node.db"))
	defer db.Close()
	for url, want := range map[string]error{
		"https://hermes.example.com":      nil,
		"https://10.0.0.1:4060/":          nil,
		"http://127.0.0.1:4060":           nil,
		"http://[::1]:4060":               nil,
		"http://localhost:4060":           nil,
		"http://10.0.0.1:4060":            ErrInsecureURL,
		"http://hermes.example.com":       ErrInsecureURL,
		"http://localhost.example.com:80": ErrInsecureURL,
		"ftp://127.0.0.1":                 errAny,
		"127.0.0.1:4060":                  errAny,
		"https://user:pw@hermes.example":  errAny,
		"https://hermes.example/?x=1":     errAny,
		"https://":                        errAny,
	} {
		_, err := New(url, hl, Options{})
		switch {
		case want == nil && err != nil:
			t.Errorf("%s: %v", url, err)
		case want == errAny && err == nil:
			t.Errorf("%s accepted", url)
		case want == ErrInsecureURL && !errors.Is(err, ErrInsecureURL):
			t.Errorf("%s: %v, want ErrInsecureURL", url, err)
		}
	}
	if _, err := New("http://10.0.0.1:4060", hl, Options{AllowInsecureHTTP: true}); err != nil {
		t.Fatalf("explicitly allowed insecure http: %v", err)
	}
	c, err := New("https://hermes.example/base/", hl, Options{})
	if err != nil || c.base != "https://hermes.example/base" {
		t.Fatalf("base %q %v", c.base, err)
	}
}

var errAny = errors.New("any error")

// TestNoRedirects: the client never follows a redirect (which could take
// it from the checked https host to plain http elsewhere).
func TestNoRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	hl, db := openHashlocks(t, filepath.Join(t.TempDir(), "node.db"))
	defer db.Close()
	c := mustNew(t, redirector.URL, hl, Options{Attempts: 1})
	if _, err := c.Info(context.Background()); err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("redirect: %v", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect was followed %d times", n)
	}
}
