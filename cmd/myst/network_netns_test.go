package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// nwRole is one role of TestNetworkEveryRoleInNamespaces: its namespace,
// linked to the router namespace on 10.97.<n>.0/24 (router .1, role .2).
type nwRole struct {
	ns   *netns.NS
	addr string
}

// TestNetworkEveryRoleInNamespaces runs every role of a network as its own
// `myst` process in its own network namespace with its own address — the
// chain (`myst chain dev`), the hermes, a bootstrap daemon, two providers
// (`myst service`, DE and US), and a consumer daemon — all routed through
// a router namespace. Everything a node needs to know about the network
// comes from one network file (--network, or MYST_NETWORK for the
// consumer); the only other flags are each process's own: data dir,
// passphrase file, listen and advertised addresses, location and prices.
// The consumer finds both providers, registers and tops up through the
// network's chain, connects to the DE provider, downloads through it from
// a web host in a seventh namespace, and the hermes records the provider's
// earnings: a paid session. The DE provider then settles those earnings
// on its own (--settle.interval 1s) and the US provider, after a second
// session, when it is stopped; both show in `myst service settlements`.
// (The network has no transactor: none exists yet.)
func TestNetworkEveryRoleInNamespaces(t *testing.T) {
	ctx := testenv.Long(t, "runs seven myst processes in network namespaces", 4*time.Minute)
	testenv.RequireNetns(t)
	start := time.Now()

	router := netns.New(t, "nwrt")
	router.MustRun("sysctl", "-qw", "net.ipv4.ip_forward=1")
	newRole := func(label string, n int) nwRole {
		ns := netns.New(t, "nw"+label)
		addr := fmt.Sprintf("10.97.%d.2", n)
		netns.Link(t, router, fmt.Sprintf("r%d", n), fmt.Sprintf("10.97.%d.1/24", n), ns, "eth0", addr+"/24")
		ns.MustRun("ip", "route", "add", "default", "via", fmt.Sprintf("10.97.%d.1", n))
		return nwRole{ns: ns, addr: addr}
	}
	chainR, hermesR, bootR := newRole("chain", 1), newRole("herm", 2), newRole("boot", 3)
	provDE, provUS, consR, webR := newRole("pde", 4), newRole("pus", 5), newRole("cons", 6), newRole("web", 9)

	// The "internet" host the consumer fetches from through a provider.
	body := strings.Repeat("openmyst network file ", 40_000)
	serveWebLog(t, webR.ns, webR.addr+":80", []byte(body))

	myst := func(dd string, args ...string) []string {
		return mystArgv(append([]string{"--data-dir", dd, "--keystore.light-scrypt"}, args...)...)
	}
	run := func(r nwRole, env []string, dd string, args ...string) string {
		t.Helper()
		out, err := r.ns.Run(ctx, "env", append(env, myst(dd, args...)...)...)
		if err != nil {
			t.Fatalf("myst %s: %v", strings.Join(args, " "), err)
		}
		return out
	}

	// 1. The chain, in its namespace.
	chainDD := t.TempDir()
	chainP := chainR.ns.Start("env", myst(chainDD, "chain", "dev", "--host", chainR.addr, "--port", "8545")...)
	depPath := filepath.Join(chainDD, "chain", "deployment.json")
	var dep chain.Deployment
	for {
		var err error
		if dep, err = chain.LoadDeployment(depPath); err == nil {
			break
		}
		select {
		case <-chainP.Exited():
			t.Fatalf("myst chain dev exited:\n%s", chainP.Output())
		case <-ctx.Done():
			t.Fatalf("no deployment:\n%s", chainP.Output())
		case <-time.After(100 * time.Millisecond):
		}
	}

	// 2. The network file: the chain, its contracts, the hermes and the
	// bootstrap peer (whose key is made ahead so its peer id is known).
	bootDD := t.TempDir()
	bootID := mysttest.DataDirPeer(t, bootDD)
	hermesURL := "http://" + hermesR.addr + ":4060"
	netDef := &network.Network{
		Name: "nslab", ChainID: dep.ChainID, RPC: []string{"http://" + chainR.addr + ":8545"},
		Deployment: dep,
		Hermes:     []network.Hermes{{URL: hermesURL, Operator: dep.HermesOperator, Contract: dep.Hermes}},
		Bootstrap:  []string{"/ip4/" + bootR.addr + "/tcp/4001/p2p/" + bootID.String()},
	}
	netFile := filepath.Join(t.TempDir(), "nslab.toml")
	if err := netDef.Save(netFile); err != nil {
		t.Fatal(err)
	}
	nf := []string{"--network", netFile}

	// 3. The hermes (its listen address is its own business).
	hermesP := hermesR.ns.Start("env", myst(t.TempDir(), append(nf, "hermes", "--hermes.listen", hermesR.addr+":4060", "--hermes.insecure-http",
		"--hermes.settle-interval", "1h")...)...)
	// 4. The bootstrap peer.
	bootP := bootR.ns.Start("env", myst(bootDD, append(nf, "daemon", "--p2p.bootstrapper", "--p2p.nat=false",
		"--p2p.listen", "/ip4/"+bootR.addr+"/tcp/4001")...)...)
	waitOutput(ctx, t, bootP, "node started", "bootstrap daemon")
	hc := func(r nwRole) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: r.ns.Dialer(5 * time.Second), DisableKeepAlives: true}}
	}
	for {
		resp, err := hc(consR).Get(hermesURL + "/v1/providers/0x0000000000000000000000000000000000000001")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-hermesP.Exited():
			t.Fatalf("myst hermes exited:\n%s", hermesP.Output())
		case <-ctx.Done():
			t.Fatalf("hermes not reachable from the consumer's namespace: %v\n%s", err, hermesP.Output())
		case <-time.After(100 * time.Millisecond):
		}
	}

	// 5. Two providers.
	type prov struct {
		addr, dd string
		p        *netns.Proc
	}
	// Both settle any earnings (threshold 1 gwei of MYST): DE checks every
	// second, US only at shutdown.
	startProvider := func(r nwRole, country string, settle ...string) prov {
		dd := t.TempDir()
		addr, pf := newDefaultIdentity(t, dd, "prov-"+country)
		args := append(append(nf, "service", "--passphrase-file", pf,
			"--p2p.listen", "/ip4/"+r.addr+"/tcp/4001", "--wg.advertise", r.addr, "--wg.port", "51820",
			"--exit.allow", "tcp:"+webR.addr+"/32 port 80", "--location.country", country,
			"--price.per-hour", "0.1", "--price.per-gib", "0.5", "--payment.interval", "1s", "--settle.threshold", "0.000000001"), settle...)
		p := r.ns.Start("env", myst(dd, args...)...)
		return prov{addr: addr, dd: dd, p: p}
	}
	de := startProvider(provDE, "DE", "--settle.interval", "1s")
	us := startProvider(provUS, "US", "--settle.interval", "1h")
	waitOutput(ctx, t, de.p, "serving", "myst service DE")
	waitOutput(ctx, t, us.p, "serving", "myst service US")
	waitOutput(ctx, t, de.p, "nat: unknown (AutoNAT: ", "myst service DE's reachability line")

	// 6. The consumer: funded and registered through the network's chain,
	// then a daemon that takes the network from MYST_NETWORK.
	consDD := t.TempDir()
	consumer, cpf := newDefaultIdentity(t, consDD, "consumer")
	run(consR, nil, consDD, append(nf, "account", "topup", "5", "--passphrase-file", cpf)...)
	run(consR, nil, consDD, append(nf, "account", "register", "--passphrase-file", cpf)...)
	consP := consR.ns.Start("env", append([]string{"MYST_NETWORK=" + netFile}, myst(consDD, "daemon", "--consumer.passphrase-file", cpf,
		"--p2p.nat=false", "--p2p.listen", "/ip4/"+consR.addr+"/tcp/0")...)...)
	waitOutput(ctx, t, consP, "node started", "consumer daemon")

	// Both providers' proposals reach the consumer through the bootstrap
	// peer (gossip takes a moment: poll until they are there).
	for {
		out, _ := consR.ns.Run(ctx, "env", myst(consDD, append(nf, "proposals", "--json")...)...)
		if strings.Contains(strings.ToLower(out), strings.ToLower(de.addr)) && strings.Contains(strings.ToLower(out), strings.ToLower(us.addr)) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the consumer did not find both providers:\n%s\n--- consumer daemon:\n%s", out, consP.Output())
		case <-time.After(500 * time.Millisecond):
		}
	}
	// session connects to the provider in country, downloads through it
	// and waits for the hermes to record the provider's earnings: a paid
	// session.
	session := func(country string, pr prov) string {
		t.Helper()
		out := run(consR, nil, consDD, "connect", "--country", country)
		if !strings.Contains(out, pr.addr) {
			t.Fatalf("connect chose %q, want the %s provider %s", out, country, pr.addr)
		}
		socks := &url.URL{Scheme: "socks5", Host: "127.0.0.1:1080"}
		cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(socks), DialContext: consR.ns.Dialer(5 * time.Second), DisableKeepAlives: true}}
		resp, err := cl.Get("http://" + webR.addr + "/")
		if err != nil {
			t.Fatalf("GET through the provider: %v\n--- consumer daemon:\n%s\n--- provider:\n%s", err, consP.Output(), pr.p.Output())
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != body {
			t.Fatalf("downloaded %d bytes (%v), want %d", len(got), err, len(body))
		}
		for {
			var p struct {
				Earned string `json:"earned"`
			}
			resp, err := hc(consR).Get(hermesURL + "/v1/providers/" + pr.addr)
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&p)
				resp.Body.Close()
			}
			if err == nil && p.Earned != "" && p.Earned != "0" {
				run(consR, nil, consDD, "disconnect")
				return p.Earned
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no earnings at the hermes (%v %q):\n%s", err, p.Earned, hermesP.Output())
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
	// settlements waits for `myst service settlements` of pr to show a
	// settled record with trigger.
	settlements := func(r nwRole, pr prov, trigger string) string {
		t.Helper()
		for {
			out, err := r.ns.Run(ctx, "env", myst(pr.dd, "service", "settlements", "--wei")...)
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); err == nil && len(f) > 3 && f[1] == trigger && f[2] == node.StatusSettled {
					return l
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no %s settlement in myst service settlements (%v):\n%s\n--- provider:\n%s", trigger, err, out, pr.p.Output())
			case <-time.After(500 * time.Millisecond):
			}
		}
	}

	earnedDE := session("DE", de)
	// DE settles on its own within a second or two (GET /settlements of
	// the running service).
	t.Logf("DE earned %s wei; auto-settled: %s", earnedDE, settlements(provDE, de, node.TriggerAuto))

	// US settles when it stops (its interval is an hour): SIGINT, then
	// the history in its database.
	earnedUS := session("US", us)
	if err := us.p.Signal(syscall.SIGINT, 60*time.Second); err != nil {
		t.Fatalf("myst service US did not stop: %v\n%s", err, us.p.Output())
	}
	t.Logf("US earned %s wei; settled at shutdown: %s", earnedUS, settlements(provUS, us, node.TriggerShutdown))
	t.Logf("consumer %s; whole test %s", consumer, time.Since(start).Round(100*time.Millisecond))
}
