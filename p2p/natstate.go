package p2p

import (
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// NATState is what a node knows about how other peers reach it.
type NATState struct {
	// Reachability is AutoNAT's verdict: public, private (behind a NAT or
	// firewall: reachable through a relay only) or unknown (not yet
	// known, or NAT traversal off).
	Reachability network.Reachability
	// Since is when Reachability last changed (zero: never).
	Since time.Time
	// TCP and UDP are libp2p's NAT device type per transport (from the
	// addresses peers observe; meaningful only when private).
	TCP, UDP network.NATDeviceType
	// Addrs are the node's advertised addresses.
	Addrs []ma.Multiaddr
}

// Relayed returns the circuit relay addresses among s.Addrs: the node
// holds a reservation on each relay named.
func (s NATState) Relayed() []ma.Multiaddr {
	return slices.DeleteFunc(slices.Clone(s.Addrs), func(a ma.Multiaddr) bool { return !isCircuit(a) })
}

// Direct returns the addresses among s.Addrs that are not relayed.
func (s NATState) Direct() []ma.Multiaddr {
	return slices.DeleteFunc(slices.Clone(s.Addrs), isCircuit)
}

// natWatch follows the host's reachability, NAT type and address events.
type natWatch struct {
	mu       sync.Mutex
	state    NATState
	onChange []func(NATState)
	stop     func()
	done     chan struct{}
}

// watchNAT starts following n's event bus; n.Close stops it.
func (n *Node) watchNAT() error {
	sub, err := n.Host.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged), new(event.EvtNATDeviceTypeChanged), new(event.EvtLocalAddressesUpdated),
	})
	if err != nil {
		return err
	}
	w := &natWatch{done: make(chan struct{})}
	w.stop = func() { sub.Close() }
	n.nat = w
	go func() {
		defer close(w.done)
		for ev := range sub.Out() {
			w.mu.Lock()
			old := w.state
			switch e := ev.(type) {
			case event.EvtLocalReachabilityChanged:
				if e.Reachability != w.state.Reachability {
					w.state.Reachability, w.state.Since = e.Reachability, time.Now()
				}
			case event.EvtNATDeviceTypeChanged:
				if e.TransportProtocol == network.NATTransportTCP {
					w.state.TCP = e.NatDeviceType
				} else {
					w.state.UDP = e.NatDeviceType
				}
			}
			cur := w.state
			fs := slices.Clone(w.onChange)
			w.mu.Unlock()
			cur.Addrs = n.Host.Addrs()
			if old.Reachability != cur.Reachability {
				n.log.Info("p2p: reachability changed", "reachability", ReachabilityName(cur.Reachability), "relay_addrs", len(cur.Relayed()))
			}
			for _, f := range fs {
				f(cur)
			}
		}
	}()
	return nil
}

// NATState returns what the node knows about its reachability now.
func (n *Node) NATState() NATState {
	n.nat.mu.Lock()
	s := n.nat.state
	n.nat.mu.Unlock()
	s.Addrs = n.Host.Addrs()
	return s
}

// OnNATChange calls f (from the node's event goroutine, so f must not
// block) after every reachability, NAT type or address change.
func (n *Node) OnNATChange(f func(NATState)) {
	n.nat.mu.Lock()
	defer n.nat.mu.Unlock()
	n.nat.onChange = append(n.nat.onChange, f)
}

// ReachabilityName is "public", "private" or "unknown".
func ReachabilityName(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// NATTypeName is "endpoint-independent", "endpoint-dependent" or "unknown".
func NATTypeName(t network.NATDeviceType) string {
	switch t {
	case network.NATDeviceTypeEndpointIndependent:
		return "endpoint-independent"
	case network.NATDeviceTypeEndpointDependent:
		return "endpoint-dependent"
	}
	return "unknown"
}
