package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tunnel/kernel"
)

// tunFlags configure `myst connect --tun`: a kernel-mode connection run by
// the connect process itself (it needs root and lives as long as the
// process), not by the daemon.
type tunFlags struct {
	on                bool
	acct              accountFlags
	bootstrap, listen []string
	iface, resolvConf string
	noKillSwitch      bool
	wait              time.Duration
}

func (t *tunFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&t.on, "tun", false, "route the whole host through a kernel WireGuard tunnel with a kill switch (root; runs in the foreground until Ctrl-C) instead of asking the daemon for a SOCKS5 proxy")
	fl.StringVar(&t.acct.rpc, "chain.rpc", "http://127.0.0.1:8545", "with --tun: EVM JSON-RPC endpoint the consumer reads its channel from")
	fl.StringVar(&t.acct.deployment, "chain.deployment", "", "with --tun: contract deployment JSON (default <data-dir>/chain/deployment.json)")
	fl.StringVar(&t.acct.identity, "identity", "", "with --tun: consumer identity (default: the default identity)")
	fl.StringVar(&t.acct.passFile, "passphrase-file", "", "with --tun: file holding the identity passphrase (or $"+passphraseEnv+")")
	fl.StringVar(&t.acct.hermes, "hermes.contract", "", "with --tun: hermes of the consumer's channel (default: the deployment's hermes)")
	fl.StringSliceVar(&t.bootstrap, "p2p.bootstrap", nil, "with --tun: bootstrap peers, /ip4/.../tcp/PORT/p2p/PEERID, comma separated")
	fl.StringSliceVar(&t.listen, "p2p.listen", []string{"/ip4/0.0.0.0/tcp/0"}, "with --tun: libp2p listen multiaddrs")
	fl.StringVar(&t.iface, "tun.interface", kernel.DefaultClientInterface, "with --tun: TUN interface name")
	fl.StringVar(&t.resolvConf, "tun.resolv-conf", "/etc/resolv.conf", "with --tun: resolv.conf pointed at the tunnel's DNS while connected and restored after (empty: leave DNS alone)")
	fl.BoolVar(&t.noKillSwitch, "tun.no-kill-switch", false, "with --tun: no kill switch (traffic may leave outside the tunnel when it drops)")
	fl.DurationVar(&t.wait, "tun.discovery-wait", 15*time.Second, "with --tun: how long to wait for a matching proposal")
}

// runConnectTun runs a kernel-mode connection in the foreground: it starts
// a consumer node, connects with consumer.KernelTunnel and waits for
// Ctrl-C (or SIGTERM), then disconnects, which removes the routes, the
// kill switch and the DNS change. If the session fails first, the kill
// switch stays up until the process is told to stop.
func runConnectTun(cmd *cobra.Command, req tequilapi.ConnectRequest, t *tunFlags) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	if req.SOCKSListen != "" {
		return errors.New("--tun and --proxy exclude each other")
	}
	if os.Geteuid() != 0 {
		return consumer.ErrNotRoot
	}
	f, err := req.Filter()
	if err != nil {
		return err
	}
	boot, err := p2p.ParseBootstrap(t.bootstrap)
	if err != nil {
		return err
	}
	s, err := t.acct.session(cmd, false)
	if err != nil {
		return err
	}
	defer s.close()
	return t.acct.withSigner(cmd, s.id, func(signer identity.Signer) error {
		c, err := node.StartConsumer(ctx, node.ConsumerConfig{
			DataDir: filepath.Join(theApp.dataDir, "consumer"), Signer: signer, Chain: s.client, Hermes: s.hermes,
			Bootstrap: boot, ListenAddrs: t.listen, Log: theApp.log,
		})
		if err != nil {
			return err
		}
		defer c.Close()
		wctx, cancel := context.WithTimeout(ctx, t.wait)
		ps, _ := c.WaitProposals(wctx, f, 1)
		cancel()
		p, err := consumer.Pick(ps, f)
		if err != nil {
			return fmt.Errorf("%w (waited %s)", err, t.wait)
		}
		start := time.Now()
		conn, err := c.Sessions.Connect(ctx, p, consumer.Options{Tunnel: consumer.KernelTunnel(consumer.KernelConfig{
			Interface: t.iface, NoKillSwitch: t.noKillSwitch, ResolvConf: t.resolvConf, Log: theApp.log,
		})})
		if err != nil {
			return err
		}
		ks := "kill switch on"
		if t.noKillSwitch {
			ks = "NO kill switch"
		}
		fmt.Fprintf(out, "connected to %s (%s) in %s: all traffic through %s, %s; Ctrl-C disconnects\n",
			p.ProviderID.Hex(), p.Location.Country, time.Since(start).Round(time.Millisecond), t.iface, ks)
		select {
		case <-ctx.Done():
		case <-conn.Done():
			fmt.Fprintf(out, "session ended: %v\n", conn.Err())
			if !t.noKillSwitch {
				fmt.Fprintln(out, "the kill switch stays up (nothing leaves outside the tunnel) until Ctrl-C")
			}
			<-ctx.Done()
		}
		st := conn.Status()
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer dcancel()
		if err := conn.Disconnect(dctx); err != nil {
			return fmt.Errorf("disconnect: %w", err)
		}
		fmt.Fprintf(out, "disconnected after %s: %d bytes down, %d up, spent %s wei; routes, kill switch and DNS restored\n",
			st.Duration.Round(time.Second), st.RxBytes, st.TxBytes, st.Spent)
		return nil
	})
}
