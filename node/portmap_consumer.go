package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/nat/portmap"
)

// DefaultConsumerICEPort is the UDP port of a daemon consumer's shared
// ICE socket (after a provider's WireGuard and ICE ports, 51820-51821,
// so one daemon can serve and connect at once).
const DefaultConsumerICEPort = 51822

// ConsumerPortMapWait bounds how long a connect waits for the home
// router's first answer to the consumer's port mapping. Once a router did
// not answer in time, later connects do not wait (the mapping is still
// tried in the background and used if it comes before the session's
// candidates are gathered).
const ConsumerPortMapWait = 4 * time.Second

// consumerPortMap is a daemon consumer's ICE port on the home router:
// the sessions' shared ICE socket (ice.Mux) stays open for the daemon's
// life, but the router forwards its port only while a connection is up
// (acquire maps it, the last release removes the mapping). While mapped,
// the mux announces the router's public address, so a provider behind a
// symmetric NAT reaches the consumer's host candidate directly; otherwise
// sessions gather ordinary host candidates.
type consumerPortMap struct {
	client *portmap.Client
	mux    *ice.Mux
	gw     netip.Addr // the router asked
	wait   time.Duration
	log    *slog.Logger

	mu       sync.Mutex
	refs     int
	maps     *portMaps
	noAnswer bool // the router did not answer a connect's wait
}

// openConsumerPortMap opens the shared ICE socket on port (0: a free
// one) at the address this host reaches its default gateway from.
func openConsumerPortMap(port uint16, client *portmap.Client, wait time.Duration, log *slog.Logger) (*consumerPortMap, error) {
	gw, err := portmap.DefaultGateway()
	if err != nil {
		return nil, fmt.Errorf("node: consumer port mapping: %w", err)
	}
	local, err := portmap.LocalAddrTowards(gw)
	if err != nil {
		return nil, err
	}
	mux, err := ice.ListenMux(netip.AddrPortFrom(local, port), netip.Addr{})
	if err != nil {
		return nil, fmt.Errorf("node: consumer ICE port: %w", err)
	}
	return &consumerPortMap{client: client, mux: mux, gw: gw, wait: wait, log: log}, nil
}

// natPMPPort is the router's NAT-PMP (and PCP) port (RFC 6886).
const natPMPPort = 5351

// routerDests are the destinations a kill switch admits (tun mode) so
// that a NAT-PMP mapping is made, renewed and removed: the router's
// NAT-PMP port. UPnP IGD's sockets are admitted by their mark instead
// (kernel.PortMapMark, to the gateway only: see gateway). The traffic
// through the mapped port is the ICE socket's (the ICE mux, marked by
// the sessions' agents like their own sockets).
func (c *consumerPortMap) routerDests() []netip.AddrPort {
	return []netip.AddrPort{netip.AddrPortFrom(c.gw, natPMPPort)}
}

// gateway is the router asked: a kill switch admits the port-mapping
// client's marked sockets to it (kernel.HoldConfig, ClientConfig
// PortMapGateway): SSDP discovery, its answers, and UPnP's HTTP.
func (c *consumerPortMap) gateway() netip.Addr { return c.gw }

// acquire maps the ICE port for a connection, waiting for the router's
// first answer at most the configured wait (none once a router did not
// answer), and returns the function giving the mapping up: the last one
// removes it from the router.
func (c *consumerPortMap) acquire(ctx context.Context) (release func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refs++
	if c.maps == nil {
		wait := c.wait
		if c.noAnswer {
			wait = 0
		}
		c.maps = startPortMaps(ctx, c.client, []uint16{c.mux.Port()}, wait, c.log)
		c.maps.attach(nil, c.mux, nil)
		m, ok := c.maps.mapping(c.mux.Port())
		c.noAnswer = !ok
		if ok {
			c.log.Info("node: consumer ICE port mapped", "external", m.External)
		}
	}
	return sync.OnceFunc(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.refs--
		if c.refs == 0 {
			c.unmapLocked()
		}
	})
}

// unmapLocked removes the mapping and stops announcing it.
func (c *consumerPortMap) unmapLocked() {
	if c.maps == nil {
		return
	}
	c.maps.close()
	c.maps = nil
	c.mux.SetExternal(netip.Addr{})
}

// mapped is the current mapping of the ICE port, if any.
func (c *consumerPortMap) mapped() (portmap.Mapping, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maps.mapping(c.mux.Port())
}

// close removes any mapping and closes the socket.
func (c *consumerPortMap) close() error {
	c.mu.Lock()
	c.unmapLocked()
	c.mu.Unlock()
	return c.mux.Close()
}
