package node

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openmyst/openmyst/internal/tick"
	"github.com/openmyst/openmyst/nat/addrs"
	"github.com/openmyst/openmyst/nat/netcheck"
	"github.com/openmyst/openmyst/nat/portmap"
	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/tunnel"
)

// AdvertiseAuto is the --wg.advertise value (ServeOptions.Advertise) that
// lets the provider find the endpoint it advertises itself
// (ProviderConfig.AdvertiseAuto): `--network` sets it when no address is
// given.
const AdvertiseAuto = network.AdvertiseAuto

// DefaultAdvertiseRefresh is how often a provider with
// ProviderConfig.AdvertiseAuto checks its public address again (a home
// connection's address changes on a reconnect or a new DHCP lease).
const DefaultAdvertiseRefresh = 2 * time.Minute

// Where an advertised endpoint came from (AdvertisedEndpoint.Source).
const (
	// EndpointConfigured: the operator's --wg.advertise.
	EndpointConfigured = "configured"
	// EndpointPortMap: the router's mapping of the WireGuard port.
	EndpointPortMap = "portmap"
	// EndpointSTUN: the STUN servers' view of the WireGuard port
	// (no NAT, or an endpoint-independent mapping).
	EndpointSTUN = "stun"
	// EndpointInterface: a public address on one of the host's
	// interfaces (no STUN server answered).
	EndpointInterface = "interface"
	// EndpointNone: no address a consumer can send to unasked; sessions
	// need ICE. The endpoint still named in session answers (the
	// protocol requires one) is the best guess: the public address
	// with the WireGuard port, or the host's own address.
	EndpointNone = "none"
)

// AdvertisedEndpoint is the static WireGuard endpoint a provider tells
// consumers, and why.
type AdvertisedEndpoint struct {
	// Addr is the endpoint in session answers.
	Addr netip.AddrPort
	// Source is one of the Endpoint* constants.
	Source string
	// Mapping is the STUN mapping behaviour (netcheck), when checked.
	Mapping string
}

// String is the one-line form `myst service` prints: "25.0.0.9:51820
// (stun, endpoint-independent)", "none static (endpoint-dependent: ICE
// only; sessions name 25.0.0.9:51820)".
func (e AdvertisedEndpoint) String() string {
	switch {
	case e.Source == EndpointNone && e.Mapping != "":
		return fmt.Sprintf("none static (%s: ICE only; sessions name %s)", e.Mapping, e.Addr)
	case e.Source == EndpointNone:
		return fmt.Sprintf("none static (ICE only; sessions name %s)", e.Addr)
	case e.Mapping != "":
		return fmt.Sprintf("%s (%s, %s)", e.Addr, e.Source, e.Mapping)
	}
	return fmt.Sprintf("%s (%s)", e.Addr, e.Source)
}

// endpointInputs is what chooseEndpoint decides from.
type endpointInputs struct {
	wgPort uint16
	// mapped is the router's mapping of the WireGuard port (mappedOK).
	mapped   portmap.Mapping
	mappedOK bool
	// stun is a STUN check (stunOK) from a socket on local port
	// stunPort: the WireGuard port itself at start, another one later.
	stun     netcheck.Result
	stunOK   bool
	stunPort uint16
	// prev is the endpoint chosen before (refreshes keep its port when
	// the check ran from another socket).
	prev AdvertisedEndpoint
	// public is a public address on one of the host's interfaces.
	public netip.Addr
	// fallback is the host's own address (the route to the internet).
	fallback netip.Addr
}

// chooseEndpoint decides the advertised endpoint: a mapped WireGuard port
// (the router forwards it: anyone reaches it), else the STUN servers'
// view when the NAT maps endpoint-independently (or there is no NAT),
// else a public interface address. An endpoint-dependent ("symmetric")
// mapping, blocked UDP, or one STUN answer whose port is not the local
// one leave no static endpoint: the reflexive port of one destination is
// useless to every other.
func chooseEndpoint(in endpointInputs) AdvertisedEndpoint {
	if in.mappedOK && in.mapped.External.Port() == in.wgPort && addrs.Public(in.mapped.External.Addr()) {
		return AdvertisedEndpoint{Addr: in.mapped.External, Source: EndpointPortMap}
	}
	if in.stunOK {
		r := in.stun
		pub := r.Public
		// The port the WireGuard socket has on the NAT: seen directly
		// when the check ran from it; after that the one found then
		// (a port-preserving NAT keeps the WireGuard port).
		port := pub.Port()
		if in.stunPort != in.wgPort {
			port = in.wgPort
			if in.prev.Source == EndpointSTUN {
				port = in.prev.Addr.Port()
			}
		}
		usable := pub.IsValid() && addrs.Public(pub.Addr())
		switch {
		case usable && (r.Behavior == netcheck.None || r.Behavior == netcheck.EndpointIndependent):
			return AdvertisedEndpoint{Addr: netip.AddrPortFrom(pub.Addr(), port), Source: EndpointSTUN, Mapping: r.Behavior}
		case usable && r.Behavior == netcheck.Unknown && pub.Port() == in.stunPort:
			// One server: the mapping kept the local port, which an
			// endpoint-dependent NAT does not.
			return AdvertisedEndpoint{Addr: netip.AddrPortFrom(pub.Addr(), port), Source: EndpointSTUN, Mapping: "port-preserving"}
		case usable:
			return AdvertisedEndpoint{Addr: netip.AddrPortFrom(pub.Addr(), in.wgPort), Source: EndpointNone, Mapping: r.Behavior}
		case r.Behavior == netcheck.UDPBlocked && !in.public.IsValid():
			return AdvertisedEndpoint{Addr: netip.AddrPortFrom(in.fallback, in.wgPort), Source: EndpointNone, Mapping: r.Behavior}
		}
	}
	if in.public.IsValid() {
		return AdvertisedEndpoint{Addr: netip.AddrPortFrom(in.public, in.wgPort), Source: EndpointInterface}
	}
	return AdvertisedEndpoint{Addr: netip.AddrPortFrom(in.fallback, in.wgPort), Source: EndpointNone}
}

// publicInterfaceAddr is the first public IPv4 address on one of the
// host's interfaces, if any.
func publicInterfaceAddr() netip.Addr {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}
	}
	for _, a := range as {
		p, err := netip.ParsePrefix(a.String())
		if err == nil && p.Addr().Is4() && addrs.Public(p.Addr()) {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// hostAddr is the host's own address towards the internet (the default
// route's source), or 127.0.0.1 without one.
func hostAddr() netip.Addr {
	if gw, err := portmap.DefaultGateway(); err == nil {
		if a, err := portmap.LocalAddrTowards(gw); err == nil {
			return a
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}

// endpointFinder finds and refreshes a provider's advertised endpoint
// (ProviderConfig.AdvertiseAuto).
type endpointFinder struct {
	wgPort  uint16
	servers []string // STUN servers (host:port)
	private bool     // servers may be private (devnets)
	maps    *portMaps

	mu  sync.Mutex
	cur AdvertisedEndpoint
}

// check runs one STUN check from conn (nil: a fresh socket) and returns
// the result and the local port it ran from.
func (f *endpointFinder) check(ctx context.Context, conn net.PacketConn) (netcheck.Result, uint16, bool) {
	if len(f.servers) == 0 {
		return netcheck.Result{}, 0, false
	}
	if conn == nil {
		c, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			return netcheck.Result{}, 0, false
		}
		defer c.Close()
		conn = c
	}
	r, err := netcheck.Check(ctx, netcheck.Config{Servers: f.servers, AllowPrivate: f.private, Conn: conn})
	if err != nil {
		return netcheck.Result{}, 0, false
	}
	return r, uint16(conn.LocalAddr().(*net.UDPAddr).Port), true
}

// find decides the endpoint at start: the STUN check runs from the
// WireGuard port itself (before the exit binds it), so an
// endpoint-independent NAT's answer names the port consumers reach.
func (f *endpointFinder) find(ctx context.Context) AdvertisedEndpoint {
	var conn net.PacketConn
	if f.wgPort != 0 {
		if c, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", f.wgPort)); err == nil {
			defer c.Close()
			conn = c
		}
	}
	return f.decide(ctx, conn)
}

// decide runs the checks and records the choice.
func (f *endpointFinder) decide(ctx context.Context, conn net.PacketConn) AdvertisedEndpoint {
	in := endpointInputs{wgPort: f.wgPort, public: publicInterfaceAddr(), fallback: hostAddr()}
	in.mapped, in.mappedOK = f.maps.mapping(f.wgPort)
	if !in.mappedOK {
		in.stun, in.stunPort, in.stunOK = f.check(ctx, conn)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	in.prev = f.cur
	f.cur = chooseEndpoint(in)
	return f.cur
}

// current is the endpoint chosen last.
func (f *endpointFinder) current() AdvertisedEndpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// endpointExit is an exit whose advertised endpoint can change while it
// runs (a new public address); everything else is the exit's.
type endpointExit struct {
	tunnel.Exit
	ep atomic.Pointer[netip.AddrPort]
}

func newEndpointExit(e tunnel.Exit, ep netip.AddrPort) *endpointExit {
	x := &endpointExit{Exit: e}
	x.ep.Store(&ep)
	return x
}

// Endpoint is the advertised endpoint.
func (x *endpointExit) Endpoint() netip.AddrPort { return *x.ep.Load() }

// AttachConn passes to the exit (both exit modes attach connections).
func (x *endpointExit) AttachConn(pub tunnel.PublicKey, c net.Conn) error {
	a, ok := x.Exit.(tunnel.ConnAttacher)
	if !ok {
		return fmt.Errorf("node: the exit %T does not attach connections", x.Exit)
	}
	return a.AttachConn(pub, c)
}

// newEndpointFinder is the finder of a provider configured with
// AdvertiseAuto: the STUN servers are the ICE configuration's.
func newEndpointFinder(cfg ProviderConfig, maps *portMaps) *endpointFinder {
	f := &endpointFinder{wgPort: cfg.WGPort, maps: maps}
	if cfg.ICE != nil {
		urls := make([]string, 0, len(cfg.ICE.Servers))
		for _, s := range cfg.ICE.Servers {
			urls = append(urls, s.URL)
		}
		f.servers = netcheck.ServersFromURLs(urls)
		f.private = cfg.ICE.Policy.AllowPrivate
	}
	return f
}

// refreshEndpoint checks the advertised endpoint every every until ctx
// ends and advertises a changed one: session answers name it, the exit
// denies the new address, the shared ICE port announces it.
func (p *Provider) refreshEndpoint(ctx context.Context, every time.Duration) {
	tick.Every(ctx, every, func(ctx context.Context) {
		old := p.epExit.Endpoint()
		ep := p.finder.decide(ctx, nil)
		if ctx.Err() != nil {
			return
		}
		if ep.Addr == old {
			return
		}
		p.epExit.ep.Store(&ep.Addr)
		if p.portMaps != nil {
			p.portMaps.attach(p.ExitPolicy, p.mux, []netip.Addr{ep.Addr.Addr()})
		} else if err := p.ExitPolicy.SetExtraDenied([]netip.Addr{ep.Addr.Addr()}); err != nil {
			p.log.Warn("node: exit policy: advertised address", "err", err)
		}
		if p.mux != nil && ep.Source != EndpointPortMap {
			ext := ep.Addr.Addr()
			if ep.Source == EndpointNone {
				ext = netip.Addr{}
			}
			p.mux.SetExternal(ext)
		}
		p.log.Info("node: the advertised WireGuard endpoint changed", "old", old, "endpoint", ep.String())
		p.cfg.Progress("wireguard endpoint: " + ep.String())
	})
}

// AdvertisedEndpoint is the static WireGuard endpoint the provider
// advertises and where it came from.
func (p *Provider) AdvertisedEndpoint() AdvertisedEndpoint {
	if p.finder != nil {
		return p.finder.current()
	}
	return AdvertisedEndpoint{Addr: p.Exit.Endpoint(), Source: EndpointConfigured}
}
