package userspace

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

const (
	nicID = 1
	// batchSize is how many packets the device moves per Read/Write call.
	batchSize = 128
	// queueLen is the outbound packet queue of the link endpoint.
	queueLen = 4096
)

// stackTUN is a tun.Device backed by a gVisor network stack: packets
// wireguard-go decrypts are injected into the stack, packets the stack
// sends are read by wireguard-go and encrypted. Unlike wireguard-go's
// tun/netstack it reads in batches and never blocks the stack's send path.
type stackTUN struct {
	ep     *linkEP
	stack  *stack.Stack
	mtu    int
	events chan tun.Event
	notify chan struct{}
	handle *channel.NotificationHandle
	gros   sync.Pool // of *gro.GRO; wireguard-go writes from one goroutine per peer

	closeOnce sync.Once
	closed    chan struct{}
}

type stackOptions struct {
	addrs   []netip.Addr // local addresses of the NIC
	mtu     int
	forward bool // promiscuous + spoofing: terminate flows to any address
}

func newStackTUN(o stackOptions) (*stackTUN, error) {
	s := stack.New(stack.Options{
		// Loopback addresses cross the tunnel in tests and in operator
		// allow rules; the exit policy, not the stack, decides about them.
		NetworkProtocols: []stack.NetworkProtocolFactory{
			ipv4.NewProtocolWithOptions(ipv4.Options{AllowExternalLoopbackTraffic: true}),
			ipv6.NewProtocolWithOptions(ipv6.Options{AllowExternalLoopbackTraffic: true}),
		},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		HandleLocal:        !o.forward,
	})
	t := &stackTUN{
		ep:     &linkEP{Endpoint: channel.New(queueLen, uint32(o.mtu), "")},
		stack:  s,
		mtu:    o.mtu,
		events: make(chan tun.Event, 1),
		notify: make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
	fail := func(what string, err tcpip.Error) (*stackTUN, error) {
		s.Close()
		s.Wait()
		return nil, fmt.Errorf("netstack: %s: %s", what, err)
	}
	if err := tuneTCP(s); err != nil {
		s.Close()
		s.Wait()
		return nil, err
	}
	// gVisor GSO: TCP builds segments of up to 64 KiB and splits them into
	// MSS-sized packets in one batch, which saves most per-segment work.
	t.ep.SupportedGSOKind = stack.GVisorGSOSupported
	// Every packet arrives through WireGuard, whose AEAD already proves it
	// is exactly what the peer's stack sent, so IP/TCP/UDP checksum
	// verification is redundant. It is also required for GRO: coalescing
	// rewrites the IP length without recomputing the header checksum.
	t.ep.LinkEPCapabilities |= stack.CapabilityRXChecksumOffload
	t.handle = t.ep.AddNotify(t)
	if err := s.CreateNIC(nicID, t.ep); err != nil {
		return fail("create NIC", err)
	}
	if o.forward {
		if err := s.SetPromiscuousMode(nicID, true); err != nil {
			return fail("promiscuous mode", err)
		}
		if err := s.SetSpoofing(nicID, true); err != nil {
			return fail("spoofing", err)
		}
	}
	var has4, has6 bool
	for _, a := range o.addrs {
		proto := ipv4.ProtocolNumber
		if a.Is6() {
			proto, has6 = ipv6.ProtocolNumber, true
		} else {
			has4 = true
		}
		pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddrFromSlice(a.AsSlice()).WithPrefix()}
		if err := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fail("add address "+a.String(), err)
		}
	}
	if has4 || o.forward {
		s.AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: nicID})
	}
	if has6 || o.forward {
		s.AddRoute(tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: nicID})
	}
	t.gros.New = func() any {
		g := new(gro.GRO)
		g.Init(groEnabled)
		return g
	}
	t.events <- tun.EventUp
	return t, nil
}

// linkEP is a channel endpoint that remembers the stack's dispatcher so
// Write can hand packets to GRO, which delivers them itself.
type linkEP struct {
	*channel.Endpoint
	mu         sync.RWMutex
	dispatcher stack.NetworkDispatcher
}

// Attach implements stack.LinkEndpoint.
func (l *linkEP) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	l.dispatcher = d
	l.mu.Unlock()
	l.Endpoint.Attach(d)
}

func (l *linkEP) getDispatcher() stack.NetworkDispatcher {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.dispatcher
}

// congestionControl is the netstacks' TCP congestion control: NewReno,
// not CUBIC. gVisor's CUBIC at the pinned version (before
// google/gvisor#13958) applies its per-ACK update in congestion avoidance
// even when the CUBIC target is below the window, so after a few losses
// ACKs shrink the window to 0; with nothing in flight no timer fires
// again and the flow stalls for good while the session stays up
// (TestDownloadSurvivesPacketLoss; a download through a reconnected
// session on a loaded CI machine). NewReno's window only grows on ACKs.
const congestionControl = "reno"

// tuneTCP enables what makes gVisor TCP fast for bulk transfers.
func tuneTCP(s *stack.Stack) error {
	sack := tcpip.TCPSACKEnabled(true)
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20}
	cc := tcpip.CongestionControlOption(congestionControl)
	delay := tcpip.TCPDelayEnabled(false)
	for name, opt := range map[string]tcpip.SettableTransportProtocolOption{
		"sack": &sack, "moderate receive buffer": &moderate, "receive buffer": &rcv,
		"send buffer": &snd, "congestion control": &cc, "nagle": &delay,
	} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return fmt.Errorf("netstack: tcp option %s: %s", name, err)
		}
	}
	return nil
}

// WriteNotify is called by the link endpoint (on the stack's send path)
// when a packet is queued; it only wakes Read.
func (t *stackTUN) WriteNotify() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// File, MTU, Name, Events and BatchSize implement tun.Device.
func (t *stackTUN) File() *os.File           { return nil }
func (t *stackTUN) MTU() (int, error)        { return t.mtu, nil }
func (t *stackTUN) Name() (string, error)    { return "netstack", nil }
func (t *stackTUN) Events() <-chan tun.Event { return t.events }
func (t *stackTUN) BatchSize() int           { return batchSize }

// Read moves up to len(bufs) packets the stack sent into bufs.
func (t *stackTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	for {
		n := 0
		for n < len(bufs) {
			pkt := t.ep.Read()
			if pkt == nil {
				break
			}
			dst := bufs[n][offset:]
			size := 0
			for _, sl := range pkt.AsSlices() {
				size += copy(dst[size:], sl)
			}
			pkt.DecRef()
			sizes[n] = size
			n++
		}
		if n > 0 {
			return n, nil
		}
		select {
		case <-t.notify:
		case <-t.closed:
			return 0, os.ErrClosed
		}
	}
}

// Write injects decrypted packets into the stack. TCP segments of one flow
// in the batch are coalesced by gVisor's GRO first, so the stack handles
// one large segment instead of dozens of MTU-sized ones.
func (t *stackTUN) Write(bufs [][]byte, offset int) (int, error) {
	d := t.ep.getDispatcher()
	if d == nil {
		return len(bufs), nil // detached: the stack is closing
	}
	g := t.gros.Get().(*gro.GRO)
	g.Dispatcher = d
	defer func() {
		g.Flush()
		g.Dispatcher = nil
		t.gros.Put(g)
	}()
	for i, b := range bufs {
		pkt := b[offset:]
		if len(pkt) == 0 {
			continue
		}
		var proto tcpip.NetworkProtocolNumber
		switch pkt[0] >> 4 {
		case 4:
			proto = header.IPv4ProtocolNumber
		case 6:
			proto = header.IPv6ProtocolNumber
		default:
			return i, syscall.EAFNOSUPPORT
		}
		pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
		pb.NetworkProtocolNumber = proto
		pb.RXChecksumValidated = true
		g.Enqueue(pb)
		pb.DecRef()
	}
	return len(bufs), nil
}

// Close stops the stack and wakes any Read. The device calls it once.
func (t *stackTUN) Close() error {
	t.closeOnce.Do(func() {
		close(t.closed)
		t.stack.RemoveNIC(nicID)
		t.ep.RemoveNotify(t.handle)
		t.ep.Close()
		t.stack.Close()
		t.stack.Wait()
		close(t.events)
	})
	return nil
}

// groEnabled can be turned off with OPENMYST_NETSTACK_GRO=0 to compare.
var groEnabled = os.Getenv("OPENMYST_NETSTACK_GRO") != "0"
