package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tunnel"
)

// TestConnectThroughDaemon: against an in-process devnet, `myst daemon`
// (a subprocess) connects on `myst connect --country DE`, bytes flow
// through its SOCKS5 proxy, `myst status` and GET /sessions show the
// session, and `myst disconnect` ends it.
func TestConnectThroughDaemon(t *testing.T) {
	ctx := testenv.Long(t, "runs a devnet and a daemon subprocess", 3*time.Minute)
	body := strings.Repeat("openmyst ", 100_000)
	port := mysttest.WebServer(t, body)
	rule, err := tunnel.ParseRule("tcp:127.0.0.1/32 port " + port)
	if err != nil {
		t.Fatal(err)
	}
	d, err := node.StartDevnet(ctx, node.DevnetConfig{DataDir: t.TempDir(), Allow: []tunnel.Rule{rule}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	// A fresh consumer identity in the daemon's keystore, registered and
	// funded on the devnet.
	dd := t.TempDir()
	pf := passFile(t, "consumer-pw")
	out, err := runCLI(t, dd, "identity", "new", "--passphrase-file", pf, "--set-default")
	if err != nil {
		t.Fatal(err)
	}
	addr := common.HexToAddress(strings.TrimSpace(out))
	ids, err := identity.NewManager(filepath.Join(dd, "keystore"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ids.Unlock(addr, "consumer-pw"); err != nil {
		t.Fatal(err)
	}
	signer, err := ids.Signer(addr)
	if err != nil {
		t.Fatal(err)
	}
	hermesID := d.Chain.Deployment().Hermes
	if _, err := d.Client.Mint(ctx, d.Client.ChannelAddress(addr, hermesID), money.MYST(5)); err != nil {
		t.Fatal(err)
	}
	if err := node.EnsureRegistered(ctx, d.Client, signer, hermesID, nil); err != nil {
		t.Fatal(err)
	}
	ids.LockAll()

	apiPort := mysttest.FreePort(t)
	daemon, lines := mysttest.StartDaemon(t, dd, apiPort, "--p2p.bootstrap", d.BootstrapAddrs()[0],
		"--consumer.passphrase-file", pf, "--chain.rpc", d.Chain.URL(), "--chain.deployment", d.DeploymentPath())
	var seen []string
	mysttest.WaitLine(t, lines, "node started", &seen)
	listeners := tcpListeners(t, daemon.Process.Pid)
	api := []string{"--tequilapi.port", strconv.Itoa(apiPort)}

	socks := fmt.Sprintf("127.0.0.1:%d", mysttest.FreePort(t))
	out, err = runCLI(t, dd, append(api, "connect", "--country", "DE", "--proxy", socks)...)
	if err != nil {
		t.Fatalf("myst connect: %v %s", err, out)
	}
	if !strings.Contains(out, d.Providers[0].Address().Hex()) || !strings.Contains(out, socks) {
		t.Fatalf("connect printed %q, want the DE provider and %s", out, socks)
	}
	// One libp2p host per node: the consumer opened no listener of its
	// own (only the SOCKS5 proxy is new).
	if got := tcpListeners(t, daemon.Process.Pid); got != listeners+1 {
		t.Fatalf("daemon listens on %d TCP sockets after connect, want %d (its own + the SOCKS5 proxy)", got, listeners+1)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "socks5", Host: socks})}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("http://127.0.0.1:" + port)
	if err != nil {
		t.Fatalf("GET through the daemon's SOCKS5 proxy: %v", err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	tr.CloseIdleConnections()
	if err != nil || string(got) != body {
		t.Fatalf("downloaded %d bytes (%v), want %d", len(got), err, len(body))
	}
	out, err = runCLI(t, dd, append(api, "status")...)
	if err != nil || !regexp.MustCompile(`state\s+connected`).MatchString(out) || !strings.Contains(out, "(DE)") ||
		!regexp.MustCompile(`reachability\s+unknown \(AutoNAT: unknown\)`).MatchString(out) {
		t.Fatalf("myst status: %v\n%s", err, out)
	}
	if _, err := runCLI(t, dd, append(api, "connect")...); err == nil {
		t.Fatal("a second connect succeeded while connected")
	}
	base := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	token := mysttest.Login(t, base, dd)
	if b, code := mysttest.GetAuth(t, base+"/sessions", token); code != 200 || !strings.Contains(b, `"role":"consumer"`) {
		t.Fatalf("GET /sessions: %d %s", code, b)
	}
	out, err = runCLI(t, dd, append(api, "disconnect")...)
	if err != nil || !strings.Contains(out, "disconnected") {
		t.Fatalf("myst disconnect: %v %s", err, out)
	}
	if _, err := runCLI(t, dd, append(api, "status")...); err == nil {
		t.Fatal("status after disconnect succeeded")
	}
	mysttest.Stop(t, daemon, lines)
}

// tcpListeners counts the listening TCP sockets process pid holds.
func tcpListeners(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("no /proc to count listeners: %v", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 9 && fs[3] == "0A" && inodes[fs[9]] {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatalf("process %d has no TCP listener", pid)
	}
	return n
}
