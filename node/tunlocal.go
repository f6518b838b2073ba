package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/session/consumer"
)

// StandaloneTun is a kernel-mode connection without a daemon (`myst
// connect --tun --standalone`).
type StandaloneTun struct {
	// Account names the chain the consumer reads its channel from, the
	// consumer identity and its passphrase.
	Account AccountFlags
	// Filter selects the providers; Wait is how long to wait for one.
	Filter market.Filter
	Wait   time.Duration
	// Bootstrap and Listen are libp2p multiaddrs.
	Bootstrap, Listen []string
	// Interface, ResolvConf and NoKillSwitch configure the kernel tunnel
	// (KernelConfig).
	Interface, ResolvConf string
	NoKillSwitch          bool
	// ICE are the network's STUN/TURN servers: sessions run ICE (a
	// provider behind NAT; none: the provider's static endpoint).
	ICE ICESettings
	// Out receives progress lines.
	Out io.Writer
}

// RunStandaloneTun runs a consumer of the data dir and its kernel-mode
// connection in the foreground (RunTun) until ctx ends. It needs root
// (ErrNotRoot before anything else). The bootstrap peers and the chain
// RPC are resolved first and kept outside the tunnel.
func (l *Local) RunStandaloneTun(ctx context.Context, t StandaloneTun) error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	boot, err := p2p.ParseBootstrap(t.Bootstrap)
	if err != nil {
		return err
	}
	iceCfg, err := t.ICE.Config()
	if err != nil {
		return err
	}
	// Control-plane destinations kept outside the tunnel: the bootstrap
	// peers and the chain RPC, resolved now, before the kill switch is up.
	control := consumer.MultiaddrControlAddrs(t.Bootstrap)
	rpcAddrs, err := RPCControlAddrs(ctx, t.Account.RPC)
	if err != nil {
		return err
	}
	control = append(control, rpcAddrs...)
	s, err := l.Session(ctx, t.Account, false)
	if err != nil {
		return err
	}
	defer s.Close()
	return l.WithSigner(ctx, s.ID, t.Account.PassphraseFile, func(signer identity.Signer) error {
		c, err := StartConsumer(ctx, ConsumerConfig{
			DataDir: filepath.Join(l.DataDir, "consumer"), Signer: signer, Chain: s.Client, Hermes: s.Hermes,
			Bootstrap: boot, ListenAddrs: t.Listen, ICE: iceCfg, Log: l.log(),
		})
		if err != nil {
			return err
		}
		defer c.Close()
		return RunTun(ctx, TunConfig{
			Consumer: c, Filter: t.Filter, Wait: t.Wait, Log: l.log(),
			Kernel:   KernelConfig{Interface: t.Interface, NoKillSwitch: t.NoKillSwitch, ResolvConf: t.ResolvConf, Control: control, Log: l.log()},
			Progress: func(m string) { fmt.Fprintln(t.Out, m) },
		})
	})
}
