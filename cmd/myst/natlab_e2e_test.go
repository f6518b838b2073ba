package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/internal/natlab"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// TestNATLabPaidSession runs the product's processes in the NAT lab: on
// the lab's internet a hub (devnet chain and hermes proxied onto its public
// address, a libp2p bootstrap with the relay role carrying the proposals'
// topic, a STUN/TURN relay) and a web server; per pair, `myst service`
// behind one NAT router and `myst daemon` + `myst connect` behind another,
// both given the relay with --ice.server. The session must come up over
// ICE on the expected path, the consumer fetches the web server's body
// through its SOCKS5 proxy, and the hermes accepts its promises (provider
// earnings > 0).
func TestNATLabPaidSession(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet, myst service and myst daemon in the NAT lab")
	}
	testenv.RequireNetns(t)
	testenv.RequireTools(t, "nft")
	start := time.Now()
	lab := natlab.New(t)
	hubHost := lab.PublicHost("hub")
	webHost := lab.PublicHost("web")
	body := []byte(strings.Repeat("openmyst through two NATs ", 40000))
	var web net.Listener
	if err := webHost.NS.Do(func() (err error) {
		web, err = net.Listen("tcp", webHost.Addr.String()+":80")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(web) }()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()
	dir := t.TempDir()
	pairs := []natLabPair{
		{name: "eim-provider", prov: natlab.EndpointIndependent, cons: natlab.EndpointIndependent, path: "direct", country: "DE", earned: "earned"},
		// The provider is reachable over libp2p only through the
		// bootstrap's circuit relay, and the data path needs TURN: an
		// endpoint-independent consumer and a symmetric provider cannot
		// punch (docs/reachability.md, "Which path").
		{name: "symmetric-provider", prov: natlab.Symmetric, cons: natlab.EndpointIndependent, path: "relay", country: "FR", earned: "earned2"},
	}
	// One consumer data directory for every pair (its daemon runs in each
	// pair's consumer site in turn): the hermes holds the consumer's
	// promise total, and a fresh directory would promise from zero again.
	var pf string
	consDD := t.TempDir()
	for i := range pairs {
		pairs[i].provDD, pairs[i].consDD = t.TempDir(), consDD
		pairs[i].provider, pf = newDefaultIdentity(t, pairs[i].provDD, "natlab-e2e")
	}
	ks := keystore.NewKeyStore(filepath.Join(dir, "ks"), keystore.LightScryptN, keystore.LightScryptP)
	acct, err := ks.ImportECDSA(devchain.DevKey(tDevnetConsumerAccount), "natlab-e2e")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, consDD, "identity", "import", acct.URL.Path, "--passphrase-file", pf); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, consDD, "identity", "set-default", acct.Address.Hex()); err != nil {
		t.Fatal(err)
	}

	hub := hubHost.NS.Start("env", tunRoleEnv+"=hub", tunDirEnv+"="+dir, tunProviderEnv+"="+pairs[0].provider, tunProvider2Env+"="+pairs[1].provider,
		tunLinkEnv+"="+hubHost.Addr.String(), tunLabEnv+"=1",
		os.Args[0], "-test.run=^TestConnectTunEndToEnd$", "-test.count=1", "-test.v", "-test.timeout=180s")
	st := waitHubState(ctx, t, hub, dir)
	user, pass, err := node.RelayCredentials(filepath.Join(dir, "relay"), "lab", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, "turn-credentials")
	if err := os.WriteFile(creds, []byte(user+":"+pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ice := []string{"--ice.server", fmt.Sprintf("stun:%s:3478", hubHost.Addr), "--ice.server", fmt.Sprintf("turn:%s:3478?transport=udp", hubHost.Addr),
		"--ice.turn-credentials-file", creds}
	for i, p := range pairs {
		site := func(role string) *natlab.Site {
			return lab.Site(fmt.Sprintf("%s%d", role, i), map[string]natlab.Kind{"p": p.prov, "c": p.cons}[role])
		}
		p.provSite, p.consSite = site("p"), site("c")
		t.Run(p.name, func(t *testing.T) { runNATLabPair(ctx, t, hub, st, p, pf, ice, webHost, body) })
	}
	t.Logf("whole test %s", time.Since(start).Round(100*time.Millisecond))
}

// natLabPair is one provider x consumer pair of TestNATLabPaidSession.
type natLabPair struct {
	name               string
	prov, cons         natlab.Kind
	path, country      string // expected path; the provider's country
	earned             string // the hub's line reporting this provider's earnings
	provider           string
	provDD, consDD     string
	provSite, consSite *natlab.Site
}

// runNATLabPair starts p's service and consumer daemon, connects, fetches
// body from web through the consumer's SOCKS5 proxy and waits for the
// provider's earnings at the hermes (the hub's earnedKey line).
func runNATLabPair(ctx context.Context, t *testing.T, hub *netns.Proc, st tunHubState, p natLabPair, pf string, ice []string, webHost *natlab.Host, body []byte) {
	t.Helper()
	pairStart := time.Now()
	provDD, consDD, provSite, consSite := p.provDD, p.consDD, p.provSite, p.consSite
	wantPath := p.path
	mainEnv := func(args ...string) []string {
		return append([]string{mysttest.RunMainEnv + "=1", os.Args[0]}, args...)
	}
	svc := provSite.Host.NS.Start("env", append(mainEnv("--data-dir", provDD, "--keystore.light-scrypt", "service", "--passphrase-file", pf,
		"--chain.rpc", st.ChainProxyURL, "--chain.deployment", st.Deployment, "--hermes.url", st.HermesLink, "--hermes.insecure-http",
		"--p2p.bootstrap", st.RelayBootstrap, "--p2p.listen", "/ip4/0.0.0.0/tcp/4001",
		"--wg.port", "51820", "--wg.advertise", provSite.WAN.String(),
		"--location.country", p.country, "--price.per-hour", "0.1", "--price.per-gib", "0.5",
		"--payment.interval", "1s", "--service.api=false"), ice...)...)
	// The pair's processes stop with the pair, not the whole test: the
	// next pair's consumer pays with the same identity.
	defer svc.Kill()
	waitOutput(ctx, t, svc, "serving", "myst service")

	apiPort := "4050"
	socks := "127.0.0.1:1080"
	daemon := consSite.Host.NS.Start("env", append(mainEnv("--data-dir", consDD, "--tequilapi.port", apiPort, "--keystore.light-scrypt", "daemon",
		"--p2p.listen", "/ip4/0.0.0.0/tcp/4001", "--p2p.bootstrap", st.RelayBootstrap,
		"--consumer.passphrase-file", pf, "--chain.rpc", st.ChainProxyURL, "--chain.deployment", st.Deployment), ice...)...)
	defer daemon.Kill()
	waitOutput(ctx, t, daemon, "node started", "myst daemon")

	var out, first string
	for {
		c := consSite.Host.NS.Start("env", mainEnv("--data-dir", consDD, "--tequilapi.port", apiPort, "connect", "--country", p.country, "--proxy", socks)...)
		<-c.Exited()
		out = c.Output()
		if first == "" {
			first = out
		}
		if strings.Contains(out, "connected to") {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("myst connect never connected; first output:\n%s\nlast output:\n%s\n--- service:\n%s\n--- daemon:\n%s", first, out, svc.Output(), daemon.Output())
		case <-time.After(time.Second):
		}
	}
	if !strings.Contains(out, "over the "+wantPath+" path") {
		t.Errorf("myst connect: %q, want the %s path", out, wantPath)
	}
	consDial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		derr := consSite.Host.NS.Do(func() error {
			c, err = (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		if err == nil && derr != nil {
			err = derr
		}
		return c, err
	}
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "socks5", Host: socks}), DialContext: consDial, DisableKeepAlives: true}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("http://" + webHost.Addr.String() + "/")
	if err != nil {
		t.Fatalf("GET through the consumer's SOCKS5 proxy: %v\n--- connect:\n%s\n--- daemon:\n%s\n--- service:\n%s", err, out, daemon.Output(), svc.Output())
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != string(body) {
		t.Fatalf("fetched %d bytes (%v), want the %d-byte body\n--- daemon:\n%s\n--- service:\n%s", len(got), err, len(body), daemon.Output(), svc.Output())
	}
	earned := waitHubEarnedKey(ctx, t, hub, p.earned)
	t.Logf("%s provider x %s consumer: path %s, provider earned %s wei; pair %s",
		provSite.Kind, consSite.Kind, wantPath, earned, time.Since(pairStart).Round(100*time.Millisecond))
}

// waitHubState waits for the hub child's state.json.
func waitHubState(ctx context.Context, t *testing.T, hub interface {
	Output() string
	Exited() <-chan struct{}
}, dir string) tunHubState {
	t.Helper()
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "state.json")); err == nil {
			var st tunHubState
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatal(err)
			}
			return st
		}
		select {
		case <-hub.Exited():
			t.Fatalf("hub exited:\n%s", hub.Output())
		case <-ctx.Done():
			t.Fatalf("hub not ready:\n%s", hub.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startLabHubRelays starts, in the hub child, a libp2p bootstrap with the
// relay role on link:4001 (bootstrapped from the devnet's) and a STUN/TURN
// relay on link:3478; it returns the bootstrap's multiaddr.
func startLabHubRelays(_ context.Context, t *testing.T, d *node.Devnet, dir, link string) string {
	boot, err := p2p.New(p2p.Config{ListenAddrs: []string{"/ip4/" + link + "/tcp/4001"}, Bootstrap: []peer.AddrInfo{d.Boot.AddrInfo()},
		DHTMode: p2p.DHTServer, RelayService: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = boot.Close() })
	// The bootstrap carries the proposals' GossipSub topic, as a
	// `myst daemon --p2p.bootstrapper` does: nodes behind NATs that cannot
	// dial each other still hear each other's proposals through it.
	disc, err := discovery.New(boot.Host, discovery.Config{ValidatorConfig: discovery.ValidatorConfig{ChainID: d.Chain.Deployment().ChainID},
		Bootstrapper: true, HeartbeatInterval: 200 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = disc.Close() })
	r, err := node.StartRelay(node.RelayConfig{DataDir: filepath.Join(dir, "relay"), UDP: link + ":3478", PublicIP: netip.MustParseAddr(link), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", link, boot.AddrInfo().ID)
}
