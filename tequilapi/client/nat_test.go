package client

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/tequilapi"
)

type natStub struct{ calls int }

func (s *natStub) NATStatus(context.Context) (tequilapi.NATStatusDTO, error) {
	return tequilapi.NATStatusDTO{Reachability: "public", Access: tequilapi.AccessDirect}, nil
}

func (s *natStub) CheckReachability(context.Context) (tequilapi.PeerCheckDTO, error) {
	s.calls++
	if s.calls > 1 {
		return tequilapi.PeerCheckDTO{}, tequilapi.ErrCheckTooSoon
	}
	return tequilapi.PeerCheckDTO{Asked: 3, Reachable: 3}, nil
}

// natClient is a logged-in client of a server with only the NAT routes
// (over natStub).
func natClient(t *testing.T) *Client {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), tequilapi.PasswordFileName)
	pw, _, err := tequilapi.EnsurePassword(pwFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tequilapi.New(tequilapi.Config{PasswordFile: pwFile, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s.Add(tequilapi.NATRoutes(&natStub{}, nil)...)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	c, err := New(ts.URL, ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(context.Background(), pw); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNATClient(t *testing.T) {
	ctx := context.Background()
	c := natClient(t)
	st, err := c.NAT(ctx)
	if err != nil || st.Access != tequilapi.AccessDirect {
		t.Fatalf("NAT = %+v, %v", st, err)
	}
	chk, err := c.CheckNAT(ctx)
	if err != nil || chk.Reachable != 3 {
		t.Fatalf("CheckNAT = %+v, %v", chk, err)
	}
	if _, err := c.CheckNAT(ctx); !IsCode(err, tequilapi.CodeTooManyRequests) {
		t.Fatalf("second CheckNAT: %v, want %s", err, tequilapi.CodeTooManyRequests)
	}
}

// PrintStatus shows the node's reachability even when not connected, and
// still fails then (scripts test the exit status).
func TestPrintStatusNotConnected(t *testing.T) {
	ctx := context.Background()
	c := natClient(t)
	var b strings.Builder
	if err := c.PrintStatus(ctx, &b); err == nil {
		t.Fatal("PrintStatus without a connection succeeded")
	}
	if !strings.Contains(b.String(), "direct (AutoNAT: public)") {
		t.Fatalf("output:\n%s", b.String())
	}
}
