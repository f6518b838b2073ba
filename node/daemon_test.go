package node

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// TestDaemonExtension runs a daemon with an extra part that adds a route
// and must be stopped on shutdown; the new Tequilapi password is shown
// once.
func TestDaemonExtension(t *testing.T) {
	type started struct{ ids *identity.Manager }
	startedc := make(chan started, 1)
	stopped := make(chan struct{})
	hello := Extension{
		Name: "hello",
		Start: func(_ context.Context, n *DaemonNode) (func(context.Context) error, error) {
			n.API.Add(tequilapi.Route{Method: "GET", Path: "/hello", Op: tequilapi.Operation{Summary: "test"},
				Handler: func(w http.ResponseWriter, _ *http.Request) {
					tequilapi.WriteJSON(w, 200, map[string]string{"greeting": "x"})
				}})
			startedc <- started{ids: n.Identities}
			return func(context.Context) error { close(stopped); return nil }, nil
		},
	}
	dd := t.TempDir()
	port := servetest.FreePort(t)
	log := slog.New(slog.DiscardHandler)
	shown := make(chan string, 2)
	cfg := DaemonConfig{
		DataDir: dd, LightScrypt: true, Log: log,
		API:          tequilapi.Config{Address: "127.0.0.1", Port: port, PasswordFile: filepath.Join(dd, tequilapi.PasswordFileName)},
		ShowPassword: func(pw string) { shown <- pw },
		Chain:        ChainConfig{RPC: "http://127.0.0.1:1", Deployment: filepath.Join(dd, "none.json")},
		P2P:          NetworkConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, ChainID: 1337},
		Extensions:   []Extension{hello},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunDaemon(ctx, cfg) }()
	var st started
	select {
	case st = <-startedc:
	case err := <-done:
		t.Fatalf("daemon exited: %v", err)
	}
	if st.ids == nil {
		t.Fatalf("extension started with %+v", st)
	}
	pw, err := tequilapi.ReadPassword(cfg.API.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := <-shown; got != pw {
		t.Fatalf("shown password %q is not the stored one", got)
	}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	c, _ := client.New("http://127.0.0.1:"+strconv.Itoa(port), hc)
	var lerr error
	for i := 0; i < 200; i++ { // the listener opens right after Start returns
		if _, lerr = c.Login(ctx, pw); lerr == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	var out map[string]string
	if err := c.Do(ctx, "GET", "/hello", nil, &out); err != nil || out["greeting"] != "x" {
		t.Fatalf("extension route: %v %v", out, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("extension not stopped on shutdown")
	}
	if len(shown) != 0 {
		t.Fatal("password shown twice")
	}
}

// TestDaemonStopsWithOpenEventStream: a browser tab holding GET /events
// open does not hold up the daemon's shutdown (the stream ends first, so
// the API server's graceful shutdown does not run into its timeout).
func TestDaemonStopsWithOpenEventStream(t *testing.T) {
	dd := t.TempDir()
	port := servetest.FreePort(t)
	shown := make(chan string, 1)
	cfg := DaemonConfig{
		DataDir: dd, LightScrypt: true, Log: slog.New(slog.DiscardHandler),
		API:          tequilapi.Config{Address: "127.0.0.1", Port: port, PasswordFile: filepath.Join(dd, tequilapi.PasswordFileName)},
		ShowPassword: func(pw string) { shown <- pw },
		Chain:        ChainConfig{RPC: "http://127.0.0.1:1", Deployment: filepath.Join(dd, "none.json")},
		P2P:          NetworkConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, ChainID: 1337},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- RunDaemon(ctx, cfg) }()
	pw := <-shown
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	c, _ := client.New("http://127.0.0.1:"+strconv.Itoa(port), hc)
	var tok string
	for i := 0; ; i++ {
		lr, err := c.Login(ctx, pw)
		if err == nil {
			tok = lr.Token
			break
		}
		if i == 500 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The stream's own context: only the daemon may end it.
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://127.0.0.1:"+strconv.Itoa(port)+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /events = %d", resp.StatusCode)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon stopped with %v after %s", err, time.Since(start))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not stop")
	}
}
