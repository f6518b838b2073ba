package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/node"
)

// prodNetwork is a network on a chain that is not a dev chain.
const prodNetwork = `name = "example"
chain_id = 80002
rpc = ["https://rpc.example.org"]
confirmations = 20

[deployment]
token = "0x1111111111111111111111111111111111111111"
registry = "0x2222222222222222222222222222222222222222"
channel_implementation = "0x3333333333333333333333333333333333333333"
hermes_implementation = "0x4444444444444444444444444444444444444444"
start_block = 99

[[hermes]]
url = "https://hermes.example.org"
operator = "0x5555555555555555555555555555555555555555"

[p2p]
bootstrap = ["/ip4/192.0.2.7/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"]
`

// devNetwork is a dev-chain network reached over plain HTTP in namespaces.
var devNetwork = strings.NewReplacer(`"example"`, `"lab"`, "80002", "1337", "https://rpc.example.org", "http://10.98.0.2:8545",
	"https://hermes.example.org", "http://10.98.0.3:4060").Replace(prodNetwork)

// resolveCmd parses args for the command they name and resolves its
// configuration (flags, env, config.toml, --network) without running it.
func resolveCmd(t *testing.T, dataDir string, args ...string) (*cobra.Command, *app, error) {
	t.Helper()
	root, a := newTestRoot()
	args = append([]string{"--data-dir", dataDir}, args...)
	cmd, rest, err := root.Find(args)
	if err != nil {
		t.Fatal(err)
	}
	_ = rest
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return cmd, a, a.setup(cmd)
}

func flagValue(t *testing.T, cmd *cobra.Command, name string) string {
	t.Helper()
	f := cmd.Flags().Lookup(name)
	if f == nil {
		t.Fatalf("%s has no --%s", cmd.Name(), name)
	}
	v := f.Value.String()
	return strings.Trim(v, "[]")
}

func writeNet(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNetworkFlagSetsWhatItCovers: --network FILE gives the daemon its
// chain, proposal chain id, bootstrap peers and hermes; without it the
// devnet defaults stay (the baseline this test would fail on).
func TestNetworkFlagSetsWhatItCovers(t *testing.T) {
	dd := t.TempDir()
	file := writeNet(t, t.TempDir(), "example.toml", prodNetwork)

	cmd, a, err := resolveCmd(t, dd, "daemon")
	if err != nil || a.network != nil || flagValue(t, cmd, "discovery.chain-id") != "1337" {
		t.Fatalf("no network: %v %v chain-id %s", err, a.network, flagValue(t, cmd, "discovery.chain-id"))
	}

	cmd, a, err = resolveCmd(t, dd, "daemon", "--network", file)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"chain.rpc":                 "https://rpc.example.org",
		"discovery.chain-id":        "80002",
		"p2p.bootstrap":             "/ip4/192.0.2.7/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
		"provider.hermes-url":       "https://hermes.example.org",
		"provider.hermes":           a.network.Hermes[0].Contract.Hex(),
		network.PublicAddrsOnlyFlag: "true",
	}
	for name, v := range want {
		if got := flagValue(t, cmd, name); got != v {
			t.Errorf("--%s = %q, want %q from the network", name, got, v)
		}
	}
	if got := flagValue(t, cmd, "provider.hermes-insecure-http"); got != "false" {
		t.Errorf("https hermes made insecure: %s", got)
	}
	var cc node.ChainConfig
	a.local(cmd).Deployment(&cc, "")
	if cc.Deployed == nil || cc.Deployed.ChainID != 80002 || cc.Deployed.DeployBlock != 99 || cc.Deployment != "" {
		t.Fatalf("deployment from the network: %+v", cc)
	}
	a.local(cmd).Deployment(&cc, "/x/deployment.json")
	if cc.Deployment != "/x/deployment.json" {
		t.Fatalf("explicit --chain.deployment lost: %+v", cc)
	}

	// The hermes server takes the network's confirmations and chain.
	cmd, _, err = resolveCmd(t, dd, "hermes", "--network", file)
	if err != nil || flagValue(t, cmd, "chain.confirmations") != "20" || flagValue(t, cmd, "chain.rpc") != "https://rpc.example.org" {
		t.Fatalf("hermes: %v", err)
	}
	// ... and proposals its chain id and peers.
	cmd, _, err = resolveCmd(t, dd, "proposals", "--network", file)
	if err != nil || flagValue(t, cmd, "discovery.chain-id") != "80002" || !strings.Contains(flagValue(t, cmd, "p2p.bootstrap"), "192.0.2.7") {
		t.Fatalf("proposals: %v", err)
	}
	// Subcommands inherit it.
	cmd, _, err = resolveCmd(t, dd, "account", "balance", "--network", file)
	if err != nil || flagValue(t, cmd, "chain.rpc") != "https://rpc.example.org" {
		t.Fatalf("account balance: %v", err)
	}

	// The transactor and STUN/TURN servers: TURN only for a node with
	// TURN credentials; explicit flags win.
	natFile := writeNet(t, t.TempDir(), "nat.toml", strings.Replace(prodNetwork, "confirmations = 20", "confirmations = 20\ntransactor_url = \"https://transactor.example.org\"", 1)+natSection)
	creds := filepath.Join(t.TempDir(), "turn")
	relay := "/ip4/192.0.2.8/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
	for _, c := range []struct {
		args      []string
		transFlag string
		want      map[string]string
	}{
		{[]string{"daemon"}, "provider.transactor", map[string]string{"ice.server": "stun:stun.example.org:3478", "provider.transactor": "https://transactor.example.org", "p2p.relays": relay}},
		{[]string{"service", "--wg.advertise", "192.0.2.9"}, "transactor", map[string]string{"p2p.relays": relay}},
		{[]string{"daemon", "--ice.turn-credentials-file", creds}, "provider.transactor", map[string]string{"ice.server": "stun:stun.example.org:3478,turn:turn.example.org:3478?transport=udp"}},
		{[]string{"service", "--wg.advertise", "192.0.2.9", "--ice.turn-credentials-file", creds}, "transactor", map[string]string{"ice.server": "stun:stun.example.org:3478,turn:turn.example.org:3478?transport=udp", "transactor": "https://transactor.example.org"}},
		{[]string{"service", "--wg.advertise", "192.0.2.9", "--ice.server", "stun:mine.example.org:3478", "--transactor", "https://mine.example.org"}, "transactor", map[string]string{"ice.server": "stun:mine.example.org:3478", "transactor": "https://mine.example.org"}},
		{[]string{"daemon", "--provider.transactor", "https://mine.example.org"}, "provider.transactor", map[string]string{"provider.transactor": "https://mine.example.org"}},
		{[]string{"account", "balance"}, "transactor", map[string]string{"transactor": "https://transactor.example.org"}},
	} {
		cmd, _, err := resolveCmd(t, dd, append(c.args, "--network", natFile)...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		for name, v := range c.want {
			if got := flagValue(t, cmd, name); got != v {
				t.Errorf("%v: --%s = %q, want %q", c.args, name, got, v)
			}
		}
	}
}

// natSection adds a relay and STUN/TURN servers to prodNetwork.
const natSection = `relays = ["/ip4/192.0.2.8/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"]

[nat]
stun = ["stun:stun.example.org:3478"]
turn = ["turn:turn.example.org:3478?transport=udp"]
`

// TestNetworkPrecedence: flags > MYST_* > config.toml > network > defaults,
// and the network itself may come from MYST_NETWORK or config.toml by name.
func TestNetworkPrecedence(t *testing.T) {
	dd := t.TempDir()
	writeNet(t, dd, filepath.Join(network.Dir, "example.toml"), prodNetwork)

	cmd, a, err := resolveCmd(t, dd, "daemon", "--network", "example", "--chain.rpc", "https://flag.example.org")
	if err != nil || a.network == nil || flagValue(t, cmd, "chain.rpc") != "https://flag.example.org" || flagValue(t, cmd, "discovery.chain-id") != "80002" {
		t.Fatalf("flag over network: %v", err)
	}
	// --chain.rpc repeats (RPC failover): every use counts, none from the network.
	cmd, _, err = resolveCmd(t, dd, "daemon", "--network", "example", "--chain.rpc", "https://a.example.org", "--chain.rpc", "https://b.example.org")
	if err != nil || flagValue(t, cmd, "chain.rpc") != "https://a.example.org,https://b.example.org" {
		t.Fatalf("repeated --chain.rpc: %v %q", err, flagValue(t, cmd, "chain.rpc"))
	}
	t.Setenv("MYST_NETWORK", "example")
	t.Setenv("MYST_DISCOVERY_CHAIN_ID", "5")
	cmd, a, err = resolveCmd(t, dd, "daemon")
	if err != nil || a.network == nil || a.network.Name != "example" || flagValue(t, cmd, "discovery.chain-id") != "5" || flagValue(t, cmd, "chain.rpc") != "https://rpc.example.org" {
		t.Fatalf("MYST_NETWORK / env over network: %v", err)
	}
	t.Setenv("MYST_NETWORK", "")
	t.Setenv("MYST_DISCOVERY_CHAIN_ID", "")
	if err := os.WriteFile(filepath.Join(dd, "config.toml"), []byte("network = \"example\"\n[chain]\nrpc = \"https://file.example.org\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, a, err = resolveCmd(t, dd, "daemon")
	if err != nil || a.network == nil || flagValue(t, cmd, "chain.rpc") != "https://file.example.org" || flagValue(t, cmd, "discovery.chain-id") != "80002" {
		t.Fatalf("config.toml: %v", err)
	}
	// An array in config.toml lists several RPCs.
	if err := os.WriteFile(filepath.Join(dd, "config.toml"), []byte("[chain]\nrpc = [\"https://c.example.org\", \"https://d.example.org\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, _, err = resolveCmd(t, dd, "daemon")
	if err != nil || flagValue(t, cmd, "chain.rpc") != "https://c.example.org,https://d.example.org" {
		t.Fatalf("config.toml rpc array: %v %q", err, flagValue(t, cmd, "chain.rpc"))
	}
}

// TestNetworkRefusesDevnetDefaults: once a network is named, a provider
// never advertises the 127.0.0.1 default of a local devnet: on a real
// network it finds its endpoint (--wg.advertise auto) unless told one, on
// a dev network it finds it with the network's STUN servers, advertises
// 127.0.0.1 when they are on loopback, and must be told one when the
// network lists none; bad references fail clearly.
func TestNetworkRefusesDevnetDefaults(t *testing.T) {
	dd := t.TempDir()
	file := writeNet(t, t.TempDir(), "example.toml", prodNetwork)
	for _, args := range [][]string{{"service", "--network", file}, {"daemon", "--network", file, "--provider.serve"}} {
		cmd, _, err := resolveCmd(t, dd, args...)
		if err != nil || flagValue(t, cmd, "wg.advertise") != "auto" {
			t.Fatalf("%v without --wg.advertise: %v", args, err)
		}
	}
	if _, _, err := resolveCmd(t, dd, "service", "--network", writeNet(t, t.TempDir(), "lab.toml", devNetwork)); err == nil || !strings.Contains(err.Error(), "--wg.advertise") {
		t.Fatalf("service on a dev network without STUN servers and --wg.advertise: %v", err)
	}
	// A dev network listing STUN servers: the provider finds its
	// endpoint when they are off this machine (a lab in namespaces),
	// advertises 127.0.0.1 when they are all on loopback (`myst devnet`).
	for stun, want := range map[string]string{`"stun:10.98.0.4:3478", "stun:10.98.0.4:3479"`: node.AdvertiseAuto, `"stun:127.0.0.1:3478", "stun:127.0.0.1:3479"`: "127.0.0.1"} {
		lab := writeNet(t, t.TempDir(), "lab.toml", devNetwork+"\n[nat]\nstun = ["+stun+"]\n")
		for _, args := range [][]string{{"service", "--network", lab}, {"daemon", "--network", lab, "--provider.serve"}} {
			cmd, _, err := resolveCmd(t, dd, args...)
			if err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			servers, err := cmd.Flags().GetStringSlice("ice.server")
			if err != nil {
				t.Fatal(err)
			}
			ic, err := node.ICESettings{Servers: servers}.Config()
			if err != nil || flagValue(t, cmd, "wg.advertise") != "" || node.DefaultAdvertise(1337, ic) != want {
				t.Fatalf("%v: --wg.advertise %q, servers %v (%v): want the default %s", args, flagValue(t, cmd, "wg.advertise"), servers, err, want)
			}
		}
	}
	cmd, _, err := resolveCmd(t, dd, "service", "--network", file, "--wg.advertise", "192.0.2.9")
	if err != nil || flagValue(t, cmd, "hermes.url") != "https://hermes.example.org" || flagValue(t, cmd, "hermes.insecure-http") != "false" || flagValue(t, cmd, "wg.advertise") != "192.0.2.9" {
		t.Fatalf("service: %v", err)
	}
	// Without a network the old local default still works (devnet use).
	if _, _, err := resolveCmd(t, dd, "service"); err != nil {
		t.Fatalf("service without a network: %v", err)
	}
	if _, _, err := resolveCmd(t, dd, "daemon", "--network", "nosuch"); err == nil || !strings.Contains(err.Error(), `no network "nosuch"`) {
		t.Fatalf("unknown name: %v", err)
	}
	bad := writeNet(t, t.TempDir(), "bad.toml", strings.Replace(prodNetwork, "start_block = 99", "start_block = 99\nfaucet = true", 1))
	if _, _, err := resolveCmd(t, dd, "daemon", "--network", bad); err == nil || !strings.Contains(err.Error(), "deployment.faucet") {
		t.Fatalf("faucet network off a dev chain: %v", err)
	}
	if got := flagValue(t, cmd, network.PublicAddrsOnlyFlag); got != "true" {
		t.Fatalf("service on a public network advertises private addresses (--%s %s)", network.PublicAddrsOnlyFlag, got)
	}
	// A dev network over plain HTTP in namespaces: the hermes client is
	// told to accept it (network.Decode allows that on dev chains only),
	// and private addresses are advertised (the lab is private).
	dev := writeNet(t, t.TempDir(), "lab.toml", devNetwork)
	cmd, _, err = resolveCmd(t, dd, "service", "--network", dev, "--wg.advertise", "10.98.0.9")
	if err != nil || flagValue(t, cmd, "hermes.insecure-http") != "true" || flagValue(t, cmd, "hermes.url") != "http://10.98.0.3:4060" || flagValue(t, cmd, network.PublicAddrsOnlyFlag) != "false" {
		t.Fatalf("dev network service: %v", err)
	}
	// Commands that do not talk to a network have no --network.
	if _, _, err := resolveCmd(t, dd, "identity", "list"); err != nil {
		t.Fatal(err)
	}
	root, _ := newTestRoot()
	if c, _, _ := root.Find([]string{"identity", "list"}); c.Flags().Lookup(network.Flag) != nil {
		t.Fatal("identity list takes --network")
	}
}

// TestDevnetNetworkFile: the file a devnet writes (what `myst devnet`
// prints) is enough for another command to act on that devnet: `myst
// account balance --network FILE` reads the devnet consumer's funded,
// registered channel with no other chain flag.
func TestDevnetNetworkFile(t *testing.T) {
	ctx := testenv.Long(t, "starts a devnet", time.Minute)
	d := mysttest.Devnet(ctx, t)
	path, err := d.WriteNetwork()
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(d.DataDir, network.Dir, node.NetworkName+network.Ext) {
		t.Fatalf("written to %s", path)
	}
	n, err := network.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if n.Deployment != d.Chain.Deployment() || n.RPC[0] != d.Chain.URL() || n.Hermes[0].URL != d.Hermes.URL() || len(n.Bootstrap) == 0 {
		t.Fatalf("network %+v does not describe the devnet", n)
	}
	out, err := runCLI(t, t.TempDir(), "account", "balance", "--network", path, "--identity", d.ConsumerSigner.Address().Hex())
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`registered:\s+true`).MatchString(out) || !strings.Contains(out, d.Chain.Deployment().ChannelAddress(d.ConsumerSigner.Address()).Hex()) {
		t.Fatalf("balance through the devnet's network file:\n%s", out)
	}

	// The transactor: a fresh identity registers through it, by the
	// network file alone.
	if n.TransactorURL != d.Transactor.URL() {
		t.Fatalf("transactor_url %q, want %q", n.TransactorURL, d.Transactor.URL())
	}
	t.Setenv("MYST_TEQUILAPI_PORT", strconv.Itoa(mysttest.FreePort(t)))
	pf, idd := passFile(t, "pw"), t.TempDir()
	id := strings.TrimSpace(mustRun(t, idd, "identity", "new", "--passphrase-file", pf))
	if out := mustRun(t, idd, "account", "register", "--network", path, "--passphrase-file", pf); !strings.Contains(out, "registered "+id+" through the transactor") {
		t.Fatalf("register through the network's transactor:\n%s", out)
	}

	// The relay: a node given the devnet's TURN credentials gets its STUN
	// and TURN servers, with the loopback policy the devnet's own nodes
	// have.
	// Its two STUN destinations (the UDP port and the alternate STUN
	// port) tell a node's NAT mapping with one relay.
	udp, alt := d.Relay.Addrs().UDP.String(), d.Relay.Addrs().STUNAlt.String()
	if len(n.STUN) != 2 || n.STUN[0] != "stun:"+udp || n.STUN[1] != "stun:"+alt || alt == udp || len(n.TURN) != 1 || n.TURN[0] != "turn:"+udp+"?transport=udp" {
		t.Fatalf("nat servers %v %v, want the relay at %s and %s", n.STUN, n.TURN, udp, alt)
	}
	cmd, _, err := resolveCmd(t, t.TempDir(), "daemon", "--network", path, "--ice.turn-credentials-file", d.TURNCredentialsFile())
	if err != nil {
		t.Fatal(err)
	}
	servers, err := cmd.Flags().GetStringSlice("ice.server")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := node.ICESettings{Servers: servers, TURNCredentialsFile: d.TURNCredentialsFile()}.Config()
	if err != nil {
		t.Fatal(err)
	}
	// A provider on the devnet's network file needs no --wg.advertise:
	// its STUN servers are all on loopback, so it advertises 127.0.0.1.
	svc, _, err := resolveCmd(t, t.TempDir(), "service", "--network", path)
	if err != nil {
		t.Fatalf("service on the devnet's network without --wg.advertise: %v", err)
	}
	svcServers, _ := svc.Flags().GetStringSlice("ice.server")
	if svcICE, err := (node.ICESettings{Servers: svcServers}).Config(); err != nil || flagValue(t, svc, "wg.advertise") != "" || node.DefaultAdvertise(n.ChainID, svcICE) != node.LoopbackAdvertise {
		t.Fatalf("service on the devnet: --wg.advertise %q, servers %v", flagValue(t, svc, "wg.advertise"), svcServers)
	}
	if len(cfg.Servers) != 3 || !cfg.Loopback || !cfg.Policy.AllowPrivate || cfg.Servers[2].Username != d.ICE.Servers[2].Username || cfg.Servers[2].Password != d.ICE.Servers[2].Password {
		t.Fatalf("ICE from the devnet's network file: %d servers, loopback %v, private %v (or other TURN credentials than the devnet's)", len(cfg.Servers), cfg.Loopback, cfg.Policy.AllowPrivate)
	}
}

// TestDevKeysRefusedOffDevChains: a deployment file that claims a faucet
// on chain 5 does not get the public dev keys: commands that would sign
// with them (account topup, hermes without --hermes.operator) refuse
// before dialing the chain.
func TestDevKeysRefusedOffDevChains(t *testing.T) {
	dd := t.TempDir()
	n, err := network.Decode([]byte(prodNetwork))
	if err != nil {
		t.Fatal(err)
	}
	dep := n.Deployment
	dep.ChainID, dep.Faucet = 5, true
	path := filepath.Join(t.TempDir(), "deployment.json")
	if err := dep.Save(path); err != nil {
		t.Fatal(err)
	}
	rpc := "http://127.0.0.1:1" // nothing listens: the refusal comes first
	if _, err := runCLI(t, dd, "account", "topup", "1", "--chain.rpc", rpc, "--chain.deployment", path, "--identity", "0x5555555555555555555555555555555555555555"); err == nil || !strings.Contains(err.Error(), "refusing the public dev keys") {
		t.Fatalf("account topup: %v", err)
	}
	if _, err := runCLI(t, dd, "hermes", "--chain.rpc", rpc, "--chain.deployment", path); err == nil || !strings.Contains(err.Error(), "refusing the public dev keys") {
		t.Fatalf("hermes: %v", err)
	}
}

// TestPublicAddrsOnlyReachesTheDaemon: the flags the network sets
// (--p2p.public-addrs-only, --p2p.relays) end up in the daemon's p2p
// configuration.
func TestPublicAddrsOnlyReachesTheDaemon(t *testing.T) {
	for _, on := range []bool{false, true} {
		_, a := newTestRoot()
		a.dataDir = t.TempDir()
		f := &daemonFlags{}
		c := &cobra.Command{Use: "daemon"}
		registerChain(c.Flags(), &f.Chain, "")
		registerDiscovery(c.Flags(), &f.DaemonOptions)
		if on {
			if err := c.Flags().Set(network.PublicAddrsOnlyFlag, "true"); err != nil {
				t.Fatal(err)
			}
			if err := c.Flags().Set(network.RelaysFlag, "/ip4/192.0.2.8/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"); err != nil {
				t.Fatal(err)
			}
		}
		cfg, err := f.config(a, c)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.P2P.PublicAddrsOnly != on || (len(cfg.P2P.Relays) == 1) != on {
			t.Fatalf("--%s=%v: daemon p2p PublicAddrsOnly %v", network.PublicAddrsOnlyFlag, on, cfg.P2P.PublicAddrsOnly)
		}
	}
}
