package node

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openmyst/openmyst/nat/netcheck"
	"github.com/openmyst/openmyst/nat/portmap"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/tequilapi"
)

// TestNATMonitor: four loopback nodes; one asks the other three to check
// it (3 of 3), a second check right away is refused, the STUN check
// against the devnet relay finds no NAT, and the metrics carry it all.
func TestNATMonitor(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	r, iceCfg, err := startDevRelay(t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var mons []*NATMonitor
	var nodes []*p2p.Node
	lines := make(chan string, 64)
	for i := range 4 {
		cfg := NATConfig{AllowPrivate: true, FirstPeerCheck: -1, CheckPeers: 3, Log: log}
		if i == 0 {
			cfg.ICE = iceCfg
			cfg.Report = func(l string) {
				select {
				case lines <- l:
				default:
				}
			}
		}
		n, m := natNode(t, cfg)
		nodes, mons = append(nodes, n), append(mons, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range nodes[1:] {
		if err := nodes[0].Host.Connect(ctx, peer.AddrInfo{ID: n.ID(), Addrs: n.Host.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	waitCheckers(t, ctx, mons[0], 3)
	c, err := mons[0].CheckReachability(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Asked != 3 || c.Reachable != 3 {
		t.Fatalf("reachable from %d of %d: %+v", c.Reachable, c.Asked, c.Results)
	}
	if _, err := mons[0].CheckReachability(ctx); !errors.Is(err, tequilapi.ErrCheckTooSoon) {
		t.Fatalf("second check: %v", err)
	}
	for mons[0].Status().Mapping == nil {
		if ctx.Err() != nil {
			t.Fatal("no STUN check")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := mons[0].Status()
	if st.Access != tequilapi.AccessUnknown || st.Mapping.Behavior != netcheck.None || len(st.DirectAddrs) == 0 || st.PeerCheck == nil || st.PeerCheck.Reachable != 3 {
		t.Fatalf("status %+v", st)
	}
	found := false
	for !found {
		select {
		case l := <-lines:
			found = strings.Contains(l, "reachable from 3 of 3 peers")
		case <-ctx.Done():
			t.Fatal("no report line with the peer check")
		}
	}
	mons[0].SetPortMappings(func() []portmap.Mapping {
		return []portmap.Mapping{{Method: portmap.MethodNATPMP, Protocol: portmap.UDP, Internal: netip.MustParseAddrPort("192.168.1.5:51820"),
			External: netip.MustParseAddrPort("198.51.100.9:51820"), Lifetime: 2 * time.Hour}}
	})
	if pm := mons[0].Status().PortMappings; len(pm) != 1 || pm[0].External != "198.51.100.9:51820" || pm[0].InternalPort != 51820 || pm[0].LifetimeSeconds != 7200 {
		t.Fatalf("port mappings %+v", pm)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NATCollector(mons[0]))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			got[name] = m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"openmyst_nat_peer_check_reachable": 3, "openmyst_nat_peer_check_asked": 3,
		"openmyst_nat_reachability/unknown": 1, "openmyst_nat_reachability/private": 0,
		"openmyst_nat_mapping/none": 1, "openmyst_nat_mapping/endpoint-dependent": 0, "openmyst_nat_relay_addresses": 0, "openmyst_nat_port_mappings": 1,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	// A monitor without STUN servers has no mapping check.
	if mons[1].Status().Mapping != nil {
		t.Fatal("mapping without servers")
	}
}

// A reachability change shows at once and runs the checks again: here
// AutoNAT's verdict "private" (without a relay reservation: unreachable)
// is followed by a peer check without anyone asking for one.
func TestNATMonitorFollowsReachability(t *testing.T) {
	var nodes []*p2p.Node
	var mons []*NATMonitor
	for i := range 2 {
		n, m := natNode(t, NATConfig{AllowPrivate: true, FirstPeerCheck: -1, ChangeSettle: 10 * time.Millisecond, ManualPeerCheck: i == 1})
		nodes, mons = append(nodes, n), append(mons, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := nodes[0].Host.Connect(ctx, nodes[1].AddrInfo()); err != nil {
		t.Fatal(err)
	}
	waitCheckers(t, ctx, mons[0], 1)
	if st := mons[0].Status(); st.PeerCheck != nil || st.Access != tequilapi.AccessUnknown {
		t.Fatalf("before: %+v", st)
	}
	em, err := nodes[0].Host.EventBus().Emitter(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	if err := em.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPrivate}); err != nil {
		t.Fatal(err)
	}
	for {
		st := mons[0].Status()
		if st.Access == tequilapi.AccessUnreachable && st.ReachabilitySince != "" && st.PeerCheck != nil && st.PeerCheck.Asked == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after the change: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A node that serves nobody checks itself only when asked.
	waitCheckers(t, ctx, mons[1], 1)
	mons[1].checkPeers(ctx)
	if _, ok := mons[1].Probe().Last(); ok {
		t.Fatal("a manual-only node checked itself")
	}
	if c, err := mons[1].CheckReachability(ctx); err != nil || c.Reachable != 1 {
		t.Fatalf("asked check: %+v, %v", c, err)
	}
}

// The NAT status lists the provider's current port mappings.
func TestNATStatusProviderPortMappings(t *testing.T) {
	_, m := natNode(t, NATConfig{FirstPeerCheck: -1})
	pm := &portMaps{log: slog.New(slog.DiscardHandler), current: map[uint16]portmap.Mapping{}}
	p := &Provider{portMaps: pm}
	m.SetPortMappings(func() []portmap.Mapping { return providerPortMappings(p) })
	if got := m.Status().PortMappings; len(got) != 0 {
		t.Fatalf("before a mapping: %+v", got)
	}
	pm.update(51820, portmap.Mapping{Method: portmap.MethodUPnP, Protocol: portmap.UDP,
		Internal: netip.MustParseAddrPort("192.168.1.5:51820"), External: netip.MustParseAddrPort("198.51.100.9:51820"), Lifetime: time.Hour})
	got := m.Status().PortMappings
	if len(got) != 1 || got[0].Method != "upnp" || got[0].External != "198.51.100.9:51820" || got[0].LifetimeSeconds != 3600 {
		t.Fatalf("after a mapping: %+v", got)
	}
	if providerPortMappings(nil) != nil {
		t.Fatal("a provider still starting has mappings")
	}
}

// natNode starts a loopback p2p node with a NAT monitor configured by cfg
// (P2P is set here; Log defaults to a discarding logger); both stop with
// the test.
func natNode(t *testing.T, cfg NATConfig) (*p2p.Node, *NATMonitor) {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	n, err := p2p.New(p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Log: cfg.Log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	cfg.P2P = n
	m, err := StartNAT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return n, m
}

// waitCheckers waits until m knows want peers that serve the probe
// protocol.
func waitCheckers(t *testing.T, ctx context.Context, m *NATMonitor, want int) {
	t.Helper()
	for len(m.Probe().Checkers()) < want {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d checkers identified", len(m.Probe().Checkers()), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
