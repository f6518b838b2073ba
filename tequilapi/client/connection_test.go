package client

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/openmyst/openmyst/tequilapi"
)

// fakeConnections is a tequilapi.ConnectionService recording the request.
type fakeConnections struct {
	mu  sync.Mutex
	req *tequilapi.ConnectRequest
}

var errNotConnected = &tequilapi.APIError{Status: http.StatusNotFound, Body: tequilapi.ErrorBody{Code: tequilapi.CodeNotFound, Message: "not connected"}}

func (f *fakeConnections) Connect(_ context.Context, req tequilapi.ConnectRequest) (tequilapi.ConnectionStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.req = &req
	return tequilapi.ConnectionStatus{Provider: req.ProviderID, Running: true}, nil
}

func (f *fakeConnections) got() *tequilapi.ConnectRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.req
}

func (f *fakeConnections) Status(context.Context) (tequilapi.ConnectionStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.req == nil {
		return tequilapi.ConnectionStatus{}, errNotConnected
	}
	return tequilapi.ConnectionStatus{Provider: f.req.ProviderID, Running: true}, nil
}

func (f *fakeConnections) Disconnect(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.req == nil {
		return errNotConnected
	}
	f.req = nil
	return nil
}

// TestConnectionClient: Connect, Status and Disconnect reach the daemon's
// connection routes with the request and bring back its answers and
// errors.
func TestConnectionClient(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, tequilapi.PasswordFileName)
	if _, _, err := tequilapi.EnsurePassword(pwFile); err != nil {
		t.Fatal(err)
	}
	s, err := tequilapi.New(tequilapi.Config{PasswordFile: pwFile, Port: 0, Version: "v-test", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeConnections{}
	s.Add(tequilapi.ConnectionRoutes(fake, slog.New(slog.DiscardHandler))...)
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	c, err := Daemon(ctx, "http://"+ln.Addr().String(), pwFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx); !IsCode(err, tequilapi.CodeNotFound) {
		t.Fatalf("status before connecting: %v", err)
	}
	const provider = "0x00000000000000000000000000000000000000aa"
	st, err := c.Connect(ctx, tequilapi.ConnectRequest{ProviderID: provider, Country: "DE"})
	if got := fake.got(); err != nil || st.Provider != provider || got == nil || got.Country != "DE" {
		t.Fatalf("connect: %+v %v (server got %+v)", st, err, got)
	}
	if st, err := c.Status(ctx); err != nil || st.Provider != provider {
		t.Fatalf("status: %+v %v", st, err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	var apiErr *Error
	if err := c.Disconnect(ctx); !errors.As(err, &apiErr) {
		t.Fatalf("second disconnect: %v", err)
	}
}
