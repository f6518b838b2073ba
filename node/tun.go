package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/session/consumer"
)

// TunConfig configures RunTun.
type TunConfig struct {
	// Consumer is the running consumer node.
	Consumer *Consumer
	// Filter selects the providers.
	Filter market.Filter
	// Kernel configures the kernel tunnel, its kill switch and DNS.
	Kernel KernelConfig
	// Wait is how long the first connect waits for a matching proposal.
	Wait time.Duration
	// Tries is how many attempts re-establish a dropped session (0:
	// DefaultReconnectTries).
	Tries int
	// Progress receives human-readable lines (connected, reconnecting,
	// disconnected, ...).
	Progress func(string)
	// Log receives events (default slog.Default()).
	Log *slog.Logger
}

// tunDialTimeout bounds one session setup.
const tunDialTimeout = 30 * time.Second

// RunTun routes the whole host through a kernel WireGuard tunnel until ctx
// ends, then disconnects, which removes the routes, the kill switch and
// the DNS change. When the session fails (provider gone, payment ended)
// it reconnects to another matching provider per the reconnect policy,
// moving the tunnel in place with the kill switch up the whole time; if
// every try fails, the kill switch stays up until ctx ends.
func RunTun(ctx context.Context, cfg TunConfig) (rerr error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	say := cfg.Progress
	if say == nil {
		say = func(string) {}
	}
	tries := cfg.Tries
	if tries <= 0 {
		tries = DefaultReconnectTries
	}
	c := cfg.Consumer
	rk := NewReconnectingKernel(cfg.Kernel)
	defer func() {
		if err := rk.Close(); err != nil && rerr == nil {
			rerr = fmt.Errorf("take the tunnel down: %w", err)
		}
	}()
	exclude := map[common.Address]bool{} // overcharged: never again
	dial := func(ctx context.Context, wait time.Duration, avoid map[common.Address]bool) (*consumer.Connection, market.Proposal, error) {
		p, err := c.pickProposal(ctx, cfg.Filter, exclude, avoid, wait, true)
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
	iface := cfg.Kernel.Interface
	ks := "kill switch on"
	if cfg.Kernel.NoKillSwitch {
		ks = "NO kill switch"
	}
	start := time.Now()
	conn, p, err := dial(ctx, cfg.Wait, nil)
	if err != nil {
		return err
	}
	say(fmt.Sprintf("connected to %s (%s) in %s: all traffic through %s, %s; Ctrl-C disconnects",
		p.ProviderID.Hex(), p.Location.Country, time.Since(start).Round(time.Millisecond), iface, ks))
	reconnects := 0
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			continue
		case <-conn.Done():
		}
		serr := conn.Err()
		say(fmt.Sprintf("session ended: %v", serr))
		var next *consumer.Connection
		if shouldRetry(serr, conn.Proposal().ProviderID, exclude) {
			say(fmt.Sprintf("reconnecting (up to %d tries) with the kill switch up", tries))
			next = redial(ctx, tries, conn.Proposal().ProviderID, func(ctx context.Context, avoid map[common.Address]bool) (*consumer.Connection, common.Address, error) {
				n, np, err := dial(ctx, reconnectWait, avoid)
				if err == nil {
					p = np
				}
				return n, np.ProviderID, err
			}, func(i int, err error) { say(fmt.Sprintf("reconnect try %d failed: %v", i+1, err)) })
		}
		if ctx.Err() != nil {
			break
		}
		if next == nil {
			// Back to the bootstrap/chain control destinations only.
			if err := rk.Prepare(context.WithoutCancel(ctx), market.Proposal{}); err != nil {
				log.Warn("close the control path to the last provider tried", "err", err)
			}
			if !cfg.Kernel.NoKillSwitch {
				say("the kill switch stays up (nothing leaves outside the tunnel) until Ctrl-C")
			}
			<-ctx.Done()
			break
		}
		reconnects++
		conn = next
		say(fmt.Sprintf("reconnected to %s (%s): reconnect %d, all traffic through %s, %s",
			p.ProviderID.Hex(), p.Location.Country, reconnects, iface, ks))
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
	say(fmt.Sprintf("disconnected after %s: %d bytes down, %d up, spent %s wei on the last session; routes, kill switch and DNS restored",
		st.Duration.Round(time.Second), st.RxBytes, st.TxBytes, st.Spent))
	return nil
}

// RPCControlAddrs returns the addresses and port of a chain RPC URL
// (http, https, ws, wss), resolving a host name now (before a kill switch
// is up); nil for an IPC path.
func RPCControlAddrs(ctx context.Context, raw string) ([]netip.AddrPort, error) {
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
