package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/openmyst/openmyst/nat/addrs"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/nat/portmap"
	"github.com/openmyst/openmyst/tunnel"
)

// PortMapWait bounds how long a provider's start waits for the home
// router to answer its first port-mapping requests (NAT-PMP, then UPnP
// discovery); the mappings are retried in the background afterwards.
const PortMapWait = 8 * time.Second

// iceMuxPort is the UDP port of a provider's shared ICE socket: the port
// after the WireGuard port (forward both, 51820-51821 by default).
func iceMuxPort(wgPort uint16) uint16 { return wgPort + 1 }

// portMaps holds a provider's port mappings on the home router (the
// WireGuard port and the ICE mux port) for as long as the provider runs:
// portmap.Keep renews them and removes them on Close.
type portMaps struct {
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	current map[uint16]portmap.Mapping // by internal port
	policy  *tunnel.ExitPolicy
	mux     *ice.Mux
	static  []netip.Addr // extra denied addresses besides the mappings'
}

// startPortMaps asks the default gateway to forward UDP ports to this
// host and keeps the mappings until close. It waits up to wait for the
// first answer for every port and returns what was mapped by then (the
// others keep being retried).
func startPortMaps(ctx context.Context, client *portmap.Client, ports []uint16, wait time.Duration, log *slog.Logger) *portMaps {
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pm := &portMaps{log: log, cancel: cancel, current: map[uint16]portmap.Mapping{}}
	first := make(chan struct{}, len(ports))
	for _, port := range ports {
		pm.wg.Add(1)
		go func() {
			defer pm.wg.Done()
			once := sync.OnceFunc(func() { first <- struct{}{} })
			client.Keep(kctx, portmap.UDP, port, func(m portmap.Mapping, err error) {
				if err == nil {
					pm.update(port, m)
				}
				once()
			})
			once()
		}()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for range ports {
		select {
		case <-first:
		case <-timer.C:
			log.Warn("node: the router did not answer port mapping in time; retrying in the background", "wait", wait)
			return pm
		case <-ctx.Done():
			return pm
		}
	}
	return pm
}

// update records a (renewed) mapping and feeds its address to the exit
// policy and the ICE mux.
func (pm *portMaps) update(port uint16, m portmap.Mapping) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	old, had := pm.current[port]
	pm.current[port] = m
	if had && old.External == m.External {
		return
	}
	pm.applyLocked()
}

// attach gives the mappings the exit policy to deny their addresses in
// (besides static) and the ICE mux to announce them on.
func (pm *portMaps) attach(policy *tunnel.ExitPolicy, mux *ice.Mux, static []netip.Addr) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	pm.policy, pm.mux, pm.static = policy, mux, static
	pm.applyLocked()
}

func (pm *portMaps) applyLocked() {
	if pm.policy != nil {
		addrs := append([]netip.Addr(nil), pm.static...)
		for _, m := range pm.current {
			addrs = append(addrs, m.External.Addr())
		}
		if err := pm.policy.SetExtraDenied(addrs); err != nil {
			pm.log.Warn("node: exit policy: mapped address", "err", err)
		}
	}
	if pm.mux != nil {
		if m, ok := pm.current[pm.mux.Port()]; ok {
			if m.External.Port() == m.Internal.Port() {
				pm.mux.SetExternal(m.External.Addr())
			} else {
				// The candidate would name a port nothing forwards.
				pm.log.Warn("node: the router mapped the ICE port to another port; not offering it", "mapped", m.External)
				pm.mux.SetExternal(netip.Addr{})
			}
		}
	}
}

// mapping returns the mapping of internal port port, if there is one.
func (pm *portMaps) mapping(port uint16) (portmap.Mapping, bool) {
	if pm == nil {
		return portmap.Mapping{}, false
	}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	m, ok := pm.current[port]
	return m, ok
}

// list returns the current mappings.
func (pm *portMaps) list() []portmap.Mapping {
	if pm == nil {
		return nil
	}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	out := make([]portmap.Mapping, 0, len(pm.current))
	for _, m := range pm.current {
		out = append(out, m)
	}
	return out
}

// close removes the mappings from the router and waits for it.
func (pm *portMaps) close() {
	if pm == nil {
		return
	}
	pm.cancel()
	pm.wg.Wait()
}

// reachableAdvertise reports whether an advertised address can be a
// public one a consumer elsewhere reaches (not the loopback default, a
// private or unspecified address).
func reachableAdvertise(a netip.Addr) bool { return addrs.Remote(a, false) }

// startPortMap maps the provider's WireGuard port (and, with ICE, its ICE
// port) on the home router and makes a mapped WireGuard port the
// advertised endpoint, unless cfg already advertises a public address.
func (p *Provider) startPortMap(ctx context.Context, cfg *ProviderConfig) {
	if cfg.WGPort == 0 {
		p.log.Warn("node: port mapping needs a fixed WireGuard port (--wg.port); not mapping")
		return
	}
	ports := []uint16{cfg.WGPort}
	if muxPort := iceMuxPort(cfg.WGPort); cfg.ICE != nil && !cfg.ICE.Loopback && muxPort != 0 {
		ports = append(ports, muxPort)
	}
	client := portmap.New(portmap.Config{Description: "openmyst", Logger: p.log})
	p.portMaps = startPortMaps(ctx, client, ports, PortMapWait, p.log)
	m, ok := p.portMaps.mapping(cfg.WGPort)
	switch {
	case !ok && cfg.AdvertiseAuto:
		p.log.Warn("node: the WireGuard port is not mapped (yet); asking the STUN servers")
	case !ok:
		p.log.Warn("node: the WireGuard port is not mapped (yet); advertising the configured address", "advertise", cfg.AdvertiseAddr)
	case reachableAdvertise(cfg.AdvertiseAddr):
		p.log.Info("node: WireGuard port mapped; advertising the configured public address", "mapped", m.External, "advertise", cfg.AdvertiseAddr)
	case m.External.Port() != cfg.WGPort:
		p.log.Warn("node: the router mapped the WireGuard port to another port; advertising the configured address", "mapped", m.External)
	default:
		cfg.AdvertiseAddr = m.External.Addr()
		p.cfg.AdvertiseAddr = cfg.AdvertiseAddr
	}
}

// iceMux opens the sessions' shared ICE socket on the ICE port
// (WGPort+1) when its public address is known or may become known: the
// router mapped it (PortMap), mapping is still being tried, or the
// operator advertises a public address (a public host, or a router that
// forwards the ICE port by hand). It returns nil, nil when none applies.
func (p *Provider) iceMux(cfg ProviderConfig) (*ice.Mux, error) {
	port := iceMuxPort(cfg.WGPort)
	if cfg.ICE == nil || cfg.ICE.Loopback || cfg.WGPort == 0 || port == 0 {
		return nil, nil
	}
	if m, ok := p.portMaps.mapping(port); ok {
		if m.External.Port() != port {
			return nil, fmt.Errorf("node: the router mapped the ICE port %d to %s, another port", port, m.External)
		}
		return ice.ListenMux(m.Internal, m.External.Addr())
	}
	if p.portMaps != nil {
		// Not mapped yet: announced once the background retry maps it.
		gw, err := portmap.DefaultGateway()
		if err != nil {
			return nil, err
		}
		local, err := portmap.LocalAddrTowards(gw)
		if err != nil {
			return nil, err
		}
		return ice.ListenMux(netip.AddrPortFrom(local, port), netip.Addr{})
	}
	if !reachableAdvertise(cfg.AdvertiseAddr) || (p.finder != nil && p.finder.current().Source == EndpointNone) {
		// No address, or one whose ports nobody reaches unasked
		// (an endpoint-dependent NAT's).
		return nil, nil
	}
	local, err := portmap.LocalAddrTowards(cfg.AdvertiseAddr)
	if err != nil {
		return nil, err
	}
	return ice.ListenMux(netip.AddrPortFrom(local, port), cfg.AdvertiseAddr)
}

// PortMappings are the provider's current port mappings on the home
// router (none without ProviderConfig.PortMap, or while the router does
// not answer).
func (p *Provider) PortMappings() []portmap.Mapping { return p.portMaps.list() }

// ICEPort is the sessions' shared ICE socket's public address, or a zero
// value when sessions gather ordinary host candidates.
func (p *Provider) ICEPort() netip.AddrPort {
	if p.mux == nil {
		return netip.AddrPort{}
	}
	return p.mux.External()
}
