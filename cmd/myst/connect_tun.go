package main

import (
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tunnel/kernel"
)

// tunFlags configure `myst connect --tun`: a tun-mode connection of the
// daemon, or with --standalone the same connection manager run by the
// connect process itself (it needs root and lives as long as the
// process).
type tunFlags struct {
	on, standalone  bool
	killSwitch, dns string
	dnsServers      []string
	acct            accountFlags
	node.StandaloneTun
}

func (t *tunFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&t.on, "tun", false, "route the whole device through the daemon's kernel WireGuard tunnel with kill switch and DNS (the daemon needs CAP_NET_ADMIN) instead of a SOCKS5 proxy")
	fl.StringVar(&t.killSwitch, "kill-switch", "", "with --tun: connection (default; until disconnect), always (also across daemon restarts) or off")
	fl.StringVar(&t.dns, "dns", "", "with --tun: provider (default), system or custom (--dns.servers); DNS always goes through the tunnel")
	fl.StringSliceVar(&t.dnsServers, "dns.servers", nil, "with --dns custom: resolver IP addresses, comma separated")
	fl.BoolVar(&t.standalone, "standalone", false, "with --tun: no daemon; this process (root) runs the connection in the foreground until Ctrl-C; the --chain.*, --identity, --p2p.* and --tun.* flags below apply")
	fl.Var(network.RPCFlag(&t.acct.RPC, "http://127.0.0.1:8545"), "chain.rpc", "with --tun --standalone: EVM JSON-RPC endpoint(s) the consumer reads its channel from (repeatable)")
	fl.StringVar(&t.acct.Deployment, "chain.deployment", "", "with --tun --standalone: contract deployment JSON (default <data-dir>/chain/deployment.json)")
	fl.StringVar(&t.acct.Identity, "identity", "", "with --tun --standalone: consumer identity (default: the default identity)")
	fl.StringVar(&t.acct.PassphraseFile, "passphrase-file", "", "with --tun --standalone: file holding the identity passphrase (or $"+node.PassphraseEnv+")")
	t.acct.HermesFlag = "hermes.contract"
	fl.StringVar(&t.acct.Hermes, "hermes.contract", "", "with --tun --standalone: hermes of the consumer's channel (default: the deployment's hermes)")
	fl.StringSliceVar(&t.Bootstrap, "p2p.bootstrap", nil, "with --tun --standalone: bootstrap peers, /ip4/.../tcp/PORT/p2p/PEERID, comma separated")
	fl.StringSliceVar(&t.Listen, "p2p.listen", []string{"/ip4/0.0.0.0/tcp/0"}, "with --tun --standalone: libp2p listen multiaddrs")
	fl.StringVar(&t.Interface, "tun.interface", kernel.DefaultClientInterface, "with --tun --standalone: TUN interface name")
	fl.StringVar(&t.ResolvConf, "tun.resolv-conf", "/etc/resolv.conf", "with --tun --standalone: resolv.conf pointed at the tunnel's DNS while connected and restored after (empty: leave DNS alone)")
	fl.BoolVar(&t.NoKillSwitch, "tun.no-kill-switch", false, "with --tun --standalone: no kill switch (traffic may leave outside the tunnel when it drops)")
	fl.DurationVar(&t.Wait, "tun.discovery-wait", 15*time.Second, "with --tun --standalone: how long to wait for a matching proposal")
	t.ICE.Register(fl, "with --tun --standalone: ")
}

// runConnectTun runs a kernel-mode connection in the foreground (see
// node.Local.RunStandaloneTun) until Ctrl-C (or SIGTERM).
func runConnectTun(cmd *cobra.Command, req tequilapi.ConnectRequest, t *tunFlags) error {
	f, err := req.Filter()
	if err != nil {
		return err
	}
	t.Filter, t.Account, t.Out = f, t.acct.AccountFlags, cmd.OutOrStdout()
	return t.acct.local(cmd).RunStandaloneTun(cmd.Context(), t.StandaloneTun)
}
