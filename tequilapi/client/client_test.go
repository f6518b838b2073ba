package client

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/quality"
	"github.com/openmyst/openmyst/tequilapi"
)

func TestMain(m *testing.M) {
	// What the account tests' dev chains leave that no chain owns.
	devchaintest.VerifyTestMain(m)
}

// fixedQuality scores every provider with 3 reports and blacklists it.
type fixedQuality struct{}

func (fixedQuality) Score(p common.Address) quality.Score {
	return quality.Score{Provider: p, Reports: 3, Value: 0.5}
}
func (fixedQuality) Blocked(common.Address) bool { return true }

// startServer runs a real Tequilapi server on a loopback port.
func startServer(t *testing.T) (url, password string) {
	t.Helper()
	url, pw, _ := serveIdentities(t, "v-test", func(*identity.Manager, *slog.Logger) []tequilapi.Route {
		return tequilapi.QualityRoutes(fixedQuality{}, nil)
	})
	return url, pw
}

// serveIdentities runs a real Tequilapi server with version on a
// loopback port until the test ends, with the identity routes of a fresh
// keystore and the routes more returns for it. It returns the server's
// URL, its password and the keystore.
func serveIdentities(t *testing.T, version string, more func(*identity.Manager, *slog.Logger) []tequilapi.Route) (url, password string, ids *identity.Manager) {
	t.Helper()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, tequilapi.PasswordFileName)
	pw, _, err := tequilapi.EnsurePassword(pwFile)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	s, err := tequilapi.New(tequilapi.Config{PasswordFile: pwFile, Version: version, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if ids, err = identity.NewManager(filepath.Join(dir, "keystore"), identity.WithLightScrypt()); err != nil {
		t.Fatal(err)
	}
	s.Add(tequilapi.IdentityRoutes(ids, log)...)
	s.Add(more(ids, log)...)
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), pw, ids
}

func TestClientAgainstRealServer(t *testing.T) {
	ctx := context.Background()
	url, pw := startServer(t)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	c, err := New(url, hc)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Healthcheck(ctx)
	if err != nil || h.Version != "v-test" {
		t.Fatalf("Healthcheck = %+v, %v", h, err)
	}
	if _, err := c.Identities(ctx); !IsCode(err, tequilapi.CodeUnauthorized) {
		t.Fatalf("Identities without login: %v", err)
	}
	var apiErr *Error
	if _, err := c.Login(ctx, "wrong"); !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("Login wrong password: %v", err)
	}
	// A wrong password triggers a short backoff; wait it out through the API.
	for {
		_, err = c.Login(ctx, pw)
		if !IsCode(err, tequilapi.CodeTooManyRequests) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateIdentity(ctx, "pass", false)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := identity.ParseAddress(id.ID)
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.Identities(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id.ID {
		t.Fatalf("Identities = %+v, %v", list, err)
	}
	if _, err := c.Sign(ctx, addr, "m"); !IsCode(err, "identity_locked") {
		t.Fatalf("Sign locked: %v", err)
	}
	if _, err := c.Unlock(ctx, addr, "nope"); !errors.As(err, &apiErr) || apiErr.Code != "wrong_passphrase" || apiErr.Fields["passphrase"] == "" {
		t.Fatalf("Unlock wrong: %v", err)
	}
	if got, err := c.Unlock(ctx, addr, "pass"); err != nil || !got.Unlocked {
		t.Fatalf("Unlock = %+v, %v", got, err)
	}
	sig, err := c.Sign(ctx, addr, "message")
	if err != nil {
		t.Fatal(err)
	}
	if err := identity.Verify(addr, []byte("message"), sig); err != nil {
		t.Fatal(err)
	}
	second, err := c.CreateIdentity(ctx, "pass2", false)
	if err != nil || second.Default {
		t.Fatalf("second identity %+v, %v", second, err)
	}
	secondAddr, _ := identity.ParseAddress(second.ID)
	if got, err := c.SetDefault(ctx, secondAddr); err != nil || !got.Default {
		t.Fatalf("SetDefault = %+v, %v", got, err)
	}
	if got, err := c.Identity(ctx, addr); err != nil || got.Default {
		t.Fatalf("old default = %+v, %v", got, err)
	}
	if _, err := c.Identity(ctx, [20]byte{1}); !IsCode(err, tequilapi.CodeNotFound) {
		t.Fatalf("Identity unknown: %v", err)
	}
	if q, err := c.Quality(ctx, addr); err != nil || q.Score.Provider != addr || q.Score.Reports != 3 || !q.Blacklisted {
		t.Fatalf("Quality = %+v, %v", q, err)
	}
	if err := c.ChangePassword(ctx, pw, "another password"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Identities(ctx); !IsCode(err, tequilapi.CodeUnauthorized) {
		t.Fatalf("old token after password change: %v", err)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:4050", "ftp://x", "http://"} {
		if _, err := New(u, nil); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
