package hermes

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/openmyst/openmyst/hermes/tlstest"
)

func copyFile(t *testing.T, from, to string, mod time.Time) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(to, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// TestCertFilesReload: a renewed certificate is served without a restart;
// a broken renewal keeps the last good one and is reported.
func TestCertFilesReload(t *testing.T) {
	a := tlstest.New(t, t.TempDir())
	b := tlstest.New(t, t.TempDir())
	if _, err := LoadCertFiles(a.CertFile, b.KeyFile, nil); err == nil {
		t.Fatal("a certificate with another key's file loaded")
	}
	cf, err := LoadCertFiles(a.CertFile, a.KeyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := cf.GetCertificate(nil)
	if !bytes.Equal(got.Certificate[0], a.Cert.Certificate[0]) {
		t.Fatal("not the loaded certificate")
	}
	later := time.Now().Add(time.Minute)
	copyFile(t, b.CertFile, a.CertFile, later)
	copyFile(t, b.KeyFile, a.KeyFile, later)
	if got, _ = cf.GetCertificate(nil); !bytes.Equal(got.Certificate[0], b.Cert.Certificate[0]) || cf.Err() != nil {
		t.Fatalf("renewed certificate not served (err %v)", cf.Err())
	}
	if err := os.WriteFile(a.KeyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a.KeyFile, later.Add(time.Minute), later.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ = cf.GetCertificate(nil); !bytes.Equal(got.Certificate[0], b.Cert.Certificate[0]) || cf.Err() == nil {
		t.Fatalf("broken renewal: served another certificate or no error (%v)", cf.Err())
	}
}

// TestServeTLS serves the API over TLS to a client trusting the CA.
func TestServeTLS(t *testing.T) {
	e := newEnv(t, nil)
	ca := tlstest.New(t, t.TempDir())
	cf, err := LoadCertFiles(ca.CertFile, ca.KeyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeTLS(ctx, ln, e.svc.Handler(e.reg), cf.TLSConfig()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	res, err := hc.Get("https://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.TLS == nil {
		t.Fatalf("healthz over TLS: %d %v", res.StatusCode, res.TLS)
	}
	if err := ServeTLS(ctx, ln, nil, nil); err == nil {
		t.Fatal("ServeTLS without a config")
	}
}
