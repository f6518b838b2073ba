package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/session/consumer"
)

// TestServiceEndToEnd: `myst service` (a subprocess) registers a fresh
// identity on a devnet's chain, publishes its proposal, serves a paid
// session to an in-process consumer, shows it in GET /sessions and
// /earnings, and `myst service settle` settles it on chain through the
// service's Tequilapi.
func TestServiceEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet and a service subprocess")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 1<<20))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	d, err := node.StartDevnet(ctx, node.DevnetConfig{DataDir: t.TempDir(), Providers: []node.ProviderSpec{}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	dd := t.TempDir()
	pf := passFile(t, "provider-pw")
	out, err := runCLI(t, dd, "identity", "new", "--passphrase-file", pf, "--set-default")
	if err != nil {
		t.Fatal(err)
	}
	provider := strings.TrimSpace(out)
	apiPort := freePort(t)
	cmd := exec.Command(os.Args[0], "--data-dir", dd, "--tequilapi.port", strconv.Itoa(apiPort), "--keystore.light-scrypt", "service",
		"--passphrase-file", pf, "--chain.rpc", d.Chain.URL(), "--chain.deployment", d.DeploymentPath(), "--hermes.url", d.Hermes.URL(),
		"--p2p.bootstrap", d.BootstrapAddrs()[0], "--p2p.listen", "/ip4/127.0.0.1/tcp/0", "--wg.port", "0",
		"--location.country", "FR", "--price.per-hour", "0.1", "--price.per-gib", "0.5", "--exit.allow", "tcp:127.0.0.1/32 port "+port)
	cmd.Env = append(os.Environ(), "MYST_TEST_RUN_MAIN=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	defer func() {
		if t.Failed() {
			t.Logf("service stderr:\n%s", stderr.String())
		}
	}()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var seen []string
	waitLine(t, lines, "registered", &seen)
	waitLine(t, lines, "tequilapi: http://", &seen)

	c, err := d.StartConsumer(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ps, err := c.WaitProposals(ctx, market.Filter{Country: "FR"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(ps[0].ProviderID.Hex(), provider) || ps[0].Price.PerGiB.MYST() != "0.5" {
		t.Fatalf("proposal %+v, want %s at 0.5 MYST/GiB", ps[0], provider)
	}
	conn, err := c.Sessions.Connect(ctx, ps[0], consumer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: conn.DialContext}
	for i := 0; i < 4; i++ {
		resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(srv.URL)
		if err != nil {
			t.Fatalf("GET through the service's exit: %v", err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != 1<<20 {
			t.Fatalf("got %d bytes", n)
		}
	}
	tr.CloseIdleConnections()
	// Production timing invoices every 30 s; the threshold-free first
	// invoice may take that long, so wait for one to be paid.
	deadline := time.Now().Add(45 * time.Second)
	for conn.PayerStats().Invoices < 1 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if conn.PayerStats().Invoices < 1 {
		t.Fatal("no invoice paid")
	}
	if err := conn.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	paid := conn.PayerStats().Paid

	base := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	token := login(t, base, dd)
	deadline = time.Now().Add(20 * time.Second)
	for {
		b, code := getAuth(t, base+"/earnings", token)
		if code == 200 && strings.Contains(b, `"earned":"`+paid.String()+`"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /earnings: %d %s, want earned %s", code, b, paid)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if b, code := getAuth(t, base+"/sessions", token); code != 200 || !strings.Contains(b, `"role":"provider"`) || !strings.Contains(b, `"paid":"`+paid.String()+`"`) {
		t.Fatalf("GET /sessions: %d %s", code, b)
	}
	if _, err := d.Hermes.Service.SettleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, dd, "--tequilapi.port", strconv.Itoa(apiPort), "service", "settle")
	if err != nil || !regexp.MustCompile(`settled `+paid.String()+` wei cumulative: tx 0x[0-9a-f]{64}`).MatchString(out) {
		t.Fatalf("myst service settle: %v %q", err, out)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
}
