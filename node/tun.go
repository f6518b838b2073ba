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

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/tequilapi"
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
// the DNS change: `myst connect --tun --standalone`, for a host without
// a daemon. It runs the daemon's connection manager (ConnectionAPI in tun
// mode, with the kill switch per connection and no persisted state) in
// the foreground, so the reconnect policy, kill switch and DNS handling
// are the daemon's.
func RunTun(ctx context.Context, cfg TunConfig) (rerr error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	say := cfg.Progress
	if say == nil {
		say = func(string) {}
	}
	k := cfg.Kernel
	control := append([]netip.AddrPort(nil), k.Control...)
	var iceServers []netip.AddrPort
	if ic := cfg.Consumer.cfg.ICE; ic != nil {
		// The STUN/TURN servers: admitted while a session negotiates
		// its path.
		srv, err := ice.ServerAddrs(ctx, ic.Servers)
		if err != nil {
			return fmt.Errorf("--ice.server: %w", err)
		}
		iceServers = consumer.JoinAddrs(srv)
	}
	api := &ConnectionAPI{
		Consumer: func(context.Context) (*Consumer, error) { return cfg.Consumer, nil },
		VPN: VPNConfig{
			Interface: k.Interface, KillSwitchTable: k.KillSwitchTable, FwMark: k.FwMark, ResolvConf: k.ResolvConf,
			HandshakeTimeout: k.HandshakeTimeout,
			Control:          func(context.Context) ([]netip.AddrPort, error) { return control, nil },
			ICEServers:       func(context.Context) ([]netip.AddrPort, error) { return iceServers, nil },
		},
		Reconnect: cfg.Tries, Wait: cfg.Wait, Progress: say, Log: log,
	}
	req := tequilapi.ConnectRequest{Mode: tequilapi.ModeTun, KillSwitch: tequilapi.KillSwitchConnection}
	ks := "kill switch on"
	if k.NoKillSwitch {
		req.KillSwitch, ks = tequilapi.KillSwitchOff, "NO kill switch"
	}
	start := time.Now()
	st, err := api.connect(ctx, req, cfg.Filter)
	if err != nil {
		return err
	}
	say(fmt.Sprintf("connected to %s (%s) in %s: all traffic through %s, %s; Ctrl-C disconnects",
		st.Provider, st.Country, time.Since(start).Round(time.Millisecond), st.Interface, ks))
	<-ctx.Done()
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer dcancel()
	last, _ := api.Status(dctx)
	if err := api.Disconnect(dctx); err != nil {
		return fmt.Errorf("disconnect: %w", err)
	}
	say(fmt.Sprintf("disconnected after %s: %d bytes down, %d up, spent %s wei on the last session; routes, kill switch and DNS restored",
		time.Duration(last.DurationSeconds*float64(time.Second)).Round(time.Second), last.RxBytes, last.TxBytes, last.Spent))
	return nil
}

// RPCControlAddrs returns the addresses and ports of the chain RPC URLs
// in raw (one, or several separated by commas as --chain.rpc takes them:
// failover may use any), resolving host names now (before a kill switch
// is up); none for an IPC path.
func RPCControlAddrs(ctx context.Context, raw string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, u := range chain.SplitRPCURLs(raw) {
		as, err := rpcControlAddrs(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, as...)
	}
	return out, nil
}

// rpcControlAddrs is RPCControlAddrs of one URL.
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
