package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/pingpong"
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
	fl.StringVar(&t.acct.passFile, "passphrase-file", "", "with --tun: file holding the identity passphrase (or $"+node.PassphraseEnv+")")
	fl.StringVar(&t.acct.hermes, "hermes.contract", "", "with --tun: hermes of the consumer's channel (default: the deployment's hermes)")
	fl.StringSliceVar(&t.bootstrap, "p2p.bootstrap", nil, "with --tun: bootstrap peers, /ip4/.../tcp/PORT/p2p/PEERID, comma separated")
	fl.StringSliceVar(&t.listen, "p2p.listen", []string{"/ip4/0.0.0.0/tcp/0"}, "with --tun: libp2p listen multiaddrs")
	fl.StringVar(&t.iface, "tun.interface", kernel.DefaultClientInterface, "with --tun: TUN interface name")
	fl.StringVar(&t.resolvConf, "tun.resolv-conf", "/etc/resolv.conf", "with --tun: resolv.conf pointed at the tunnel's DNS while connected and restored after (empty: leave DNS alone)")
	fl.BoolVar(&t.noKillSwitch, "tun.no-kill-switch", false, "with --tun: no kill switch (traffic may leave outside the tunnel when it drops)")
	fl.DurationVar(&t.wait, "tun.discovery-wait", 15*time.Second, "with --tun: how long to wait for a matching proposal")
}

// Reconnect policy of `myst connect --tun`, the same as the daemon's
// node.ConnectionAPI: up to tunReconnectTries attempts after 1 s, 2 s,
// 4 s; a provider that overcharged or sent a bad invoice is excluded; no
// retry after insufficient channel balance.
const (
	tunReconnectTries = 3
	tunDialTimeout    = 30 * time.Second
)

// runConnectTun runs a kernel-mode connection in the foreground: it starts
// a consumer node, connects with a consumer.ReconnectingKernel and waits
// for Ctrl-C (or SIGTERM), then disconnects, which removes the routes, the
// kill switch and the DNS change. When the session fails (provider gone,
// payment ended) it reconnects to another matching provider per the
// reconnect policy, moving the tunnel in place with the kill switch up the
// whole time; if every try fails, the kill switch stays up until the
// process is told to stop.
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
	// Control-plane destinations kept outside the tunnel: the bootstrap
	// peers and the chain RPC, resolved now, before the kill switch is up.
	control := consumer.MultiaddrControlAddrs(t.bootstrap)
	rpcAddrs, err := rpcControlAddrs(ctx, t.acct.rpc)
	if err != nil {
		return err
	}
	control = append(control, rpcAddrs...)
	s, err := t.acct.session(cmd, false)
	if err != nil {
		return err
	}
	defer s.Close()
	return t.acct.withSigner(cmd, s.id, func(signer identity.Signer) (rerr error) {
		c, err := node.StartConsumer(ctx, node.ConsumerConfig{
			DataDir: filepath.Join(theApp.dataDir, "consumer"), Signer: signer, Chain: s.Client, Hermes: s.Hermes,
			Bootstrap: boot, ListenAddrs: t.listen, Log: theApp.log,
		})
		if err != nil {
			return err
		}
		defer c.Close()
		rk := consumer.NewReconnectingKernel(consumer.KernelConfig{
			Interface: t.iface, NoKillSwitch: t.noKillSwitch, ResolvConf: t.resolvConf, Control: control, Log: theApp.log,
		})
		defer func() {
			if err := rk.Close(); err != nil && rerr == nil {
				rerr = fmt.Errorf("take the tunnel down: %w", err)
			}
		}()
		exclude := map[common.Address]bool{} // overcharged: never again
		// dial opens a session on the best matching proposal, preferring
		// providers not in avoid (those that just failed).
		dial := func(wait time.Duration, avoid map[common.Address]bool) (*consumer.Connection, market.Proposal, error) {
			wctx, cancel := context.WithTimeout(ctx, wait)
			ps, _ := c.WaitProposals(wctx, f, 1)
			if usable := pickable(ps, exclude, avoid); usable == 0 && len(ps) > 0 {
				// Only providers that just failed are known (their
				// proposals outlive them): wait for one more to arrive
				// through the bootstrap peers.
				if more, _ := c.WaitProposals(wctx, f, len(ps)+1); len(more) > len(ps) {
					ps = more
				}
			}
			cancel()
			p, err := pickReconnect(ps, f, exclude, avoid)
			if err != nil {
				return nil, p, fmt.Errorf("%w (waited %s)", err, wait)
			}
			if err := rk.Prepare(ctx, p); err != nil {
				return nil, p, err
			}
			dctx, dcancel := context.WithTimeout(ctx, tunDialTimeout)
			defer dcancel()
			conn, err := c.Sessions.Connect(dctx, p, consumer.Options{Tunnel: rk.Opener()})
			return conn, p, err
		}
		start := time.Now()
		conn, p, err := dial(t.wait, nil)
		if err != nil {
			return err
		}
		ks := "kill switch on"
		if t.noKillSwitch {
			ks = "NO kill switch"
		}
		fmt.Fprintf(out, "connected to %s (%s) in %s: all traffic through %s, %s; Ctrl-C disconnects\n",
			p.ProviderID.Hex(), p.Location.Country, time.Since(start).Round(time.Millisecond), t.iface, ks)
		reconnects := 0
	watch:
		for {
			select {
			case <-ctx.Done():
				break watch
			case <-conn.Done():
			}
			serr := conn.Err()
			fmt.Fprintf(out, "session ended: %v\n", serr)
			failed := conn.Proposal().ProviderID
			if errors.Is(serr, pingpong.ErrOvercharge) || errors.Is(serr, pingpong.ErrBadInvoice) {
				exclude[failed] = true
			}
			var next *consumer.Connection
			if !errors.Is(serr, pingpong.ErrInsufficientBalance) {
				avoid := map[common.Address]bool{failed: true}
				fmt.Fprintf(out, "reconnecting (up to %d tries) with the kill switch up\n", tunReconnectTries)
				for i := 0; i < tunReconnectTries && next == nil; i++ {
					select {
					case <-ctx.Done():
						break watch
					case <-time.After(time.Second << i):
					}
					var derr error
					if next, p, derr = dial(5*time.Second, avoid); derr != nil {
						fmt.Fprintf(out, "reconnect try %d failed: %v\n", i+1, derr)
						if p.ProviderID != (common.Address{}) {
							avoid[p.ProviderID] = true
						}
					}
				}
			}
			if next == nil {
				// Back to the bootstrap/chain control destinations only.
				if err := rk.Prepare(context.WithoutCancel(ctx), market.Proposal{}); err != nil {
					theApp.log.Warn("close the control path to the last provider tried", "err", err)
				}
				if !t.noKillSwitch {
					fmt.Fprintln(out, "the kill switch stays up (nothing leaves outside the tunnel) until Ctrl-C")
				}
				<-ctx.Done()
				break watch
			}
			reconnects++
			conn = next
			fmt.Fprintf(out, "reconnected to %s (%s): reconnect %d, all traffic through %s, %s\n",
				p.ProviderID.Hex(), p.Location.Country, reconnects, t.iface, ks)
		}
		st := conn.Status()
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer dcancel()
		if err := conn.Disconnect(dctx); err != nil {
			return fmt.Errorf("disconnect: %w", err)
		}
		if err := rk.Close(); err != nil {
			return fmt.Errorf("take the tunnel down: %w", err)
		}
		fmt.Fprintf(out, "disconnected after %s: %d bytes down, %d up, spent %s wei on the last session; routes, kill switch and DNS restored\n",
			st.Duration.Round(time.Second), st.RxBytes, st.TxBytes, st.Spent)
		return nil
	})
}

// pickReconnect picks the best proposal of ps matching f, never one of an
// excluded provider, and one of a provider in avoid (just failed) only
// when there is no other.
func pickReconnect(ps []market.Proposal, f market.Filter, exclude, avoid map[common.Address]bool) (market.Proposal, error) {
	var fresh, stale []market.Proposal
	for _, p := range ps {
		switch {
		case exclude[p.ProviderID]:
		case avoid[p.ProviderID]:
			stale = append(stale, p)
		default:
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		fresh = stale
	}
	return consumer.Pick(fresh, f)
}

// pickable counts the proposals of ps of providers neither excluded nor
// avoided.
func pickable(ps []market.Proposal, exclude, avoid map[common.Address]bool) int {
	n := 0
	for _, p := range ps {
		if !exclude[p.ProviderID] && !avoid[p.ProviderID] {
			n++
		}
	}
	return n
}

// rpcControlAddrs returns the addresses and port of a chain RPC URL
// (http, https, ws, wss), resolving a host name now; nil for an IPC path.
func rpcControlAddrs(ctx context.Context, raw string) ([]netip.AddrPort, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, nil
	}
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "http", "ws":
			port = "80"
		case "https", "wss":
			port = "443"
		default:
			return nil, nil
		}
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil || pn == 0 {
		return nil, fmt.Errorf("--chain.rpc %q: bad port", raw)
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), uint16(pn))}, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("--chain.rpc: resolve %s before the kill switch is up: %w", host, err)
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, a := range ips {
		out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(pn)))
	}
	return out, nil
}
