package kernel

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// TestKillSwitchAdmitsICESocketsOnly holds the kill switch with a
// session's ICE checks admitted and sends UDP from two sockets of the
// consumer's namespace on the ports an ICE agent had used: only the one
// carrying SocketMark (the agent's) reaches the other side; the other,
// unmarked (any program reusing a port the agent released), is refused
// and counted. Unsolicited datagrams from the far side (a peer-reflexive
// peer's checks) reach the marked socket only.
func TestKillSwitchAdmitsICESocketsOnly(t *testing.T) {
	testenv.RequireTools(t, "ip", "nft")
	c, p := netns.New(t, "kc"), netns.New(t, "kp")
	netns.Link(t, c, "vc", consumerAddr+"/24", p, "vp", providerUplink+"/24")

	// The far side: a receiver, and a sender from a port the consumer
	// never talked to.
	far2 := listenUDPIn(t, p, providerUplink+":9999", providerUplink+":9998")
	recv, send := far2[0], far2[1]

	const iceChecks = "ice-checks"
	var marked, other *net.UDPConn
	if err := c.Do(func() (err error) {
		lc := net.ListenConfig{Control: markWith(SocketMark)}
		pc, err := lc.ListenPacket(t.Context(), "udp4", consumerAddr+":40001")
		if err != nil {
			return err
		}
		marked = pc.(*net.UDPConn)
		other, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(consumerAddr), Port: 40000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer marked.Close()
	defer other.Close()

	// Held, with a session's ICE checks running: before the fix the
	// agent's ports (40000 and 40001) were admitted, whoever owned them.
	ks, err := killSwitchRuleset{Table: DefaultKillSwitchTable, Iface: "myst0", Hold: true, ICEChecks: true}.render()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ks, iceChecks) {
		t.Fatalf("kill switch with ICE checks has no %q rule:\n%s", iceChecks, ks)
	}
	if err := c.Nft(t.Context(), ks); err != nil {
		t.Fatal(err)
	}
	counter := func(comment string) uint64 {
		n, err := sumBlocked([]byte(c.MustRun("nft", "-j", "list", "table", "inet", DefaultKillSwitchTable)), comment)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	far := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(providerUplink + ":9999"))
	// The leak attempt first, then the agent's datagram on the same path:
	// once the second has arrived, the first would have.
	for i := 0; i < 3; i++ {
		_, _ = other.WriteToUDP([]byte("leak"), far)
	}
	if _, err := marked.WriteToUDP([]byte("check"), far); err != nil {
		t.Fatalf("marked socket: %v", err)
	}
	got := readAll(t, recv, "check")
	if got["leak"] != 0 || got["check"] == 0 {
		t.Fatalf("outside the tunnel the far side received %v: want only the marked socket's datagram", got)
	}
	if n := counter("killswitch"); n < 3 {
		t.Fatalf("kill switch refused %d datagrams, want the 3 from the unmarked socket", n)
	}

	// Inbound, unsolicited (a peer-reflexive peer's first check): to the
	// unmarked socket first, then to the marked one.
	for _, to := range []*net.UDPConn{other, marked} {
		if _, err := send.WriteToUDP([]byte("in"), to.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	if got := readAll(t, marked, "in"); got["in"] != 1 {
		t.Fatalf("the marked socket received %v from a new peer, want its check", got)
	}
	if got := readAll(t, other, ""); len(got) != 0 {
		t.Fatalf("the unmarked socket received %v from outside the tunnel", got)
	}
	if n := counter("killswitch-inbound"); n < 1 {
		t.Fatalf("inbound drop counter %d: the datagram to the unmarked socket was not dropped by the kill switch", n)
	}
}

// readAll reads datagrams from conn until until arrives (then for a short
// grace) or, with until empty, for a short while, and counts them by
// content.
func readAll(t *testing.T, conn *net.UDPConn, until string) map[string]int {
	t.Helper()
	got := map[string]int{}
	deadline := time.Now().Add(5 * time.Second)
	if until == "" {
		deadline = time.Now().Add(300 * time.Millisecond)
	}
	buf := make([]byte, 64)
	for {
		if err := conn.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		n, _, err := conn.ReadFromUDP(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got[string(buf[:n])]++
		if until != "" && string(buf[:n]) == until {
			deadline = time.Now().Add(200 * time.Millisecond)
			until = ""
		}
	}
}

// TestKillSwitchAdmitsPortMapToGatewayOnly holds the kill switch with a
// port-mapping gateway and checks what UPnP IGD needs gets through from
// sockets marked PortMapMark, and nothing else: SSDP's M-SEARCH to the
// multicast group, the gateway's unicast answer, TCP to the gateway.
// Unmarked sockets, an ICE socket (SocketMark), a marked socket to
// another host on the LAN, and answers from another host are refused.
func TestKillSwitchAdmitsPortMapToGatewayOnly(t *testing.T) {
	testenv.RequireTools(t, "ip", "nft")
	c, p := netns.New(t, "kmc"), netns.New(t, "kmg")
	netns.Link(t, c, "vc", consumerAddr+"/24", p, "vp", providerUplink+"/24")
	const otherHost = "198.51.100.3" // another host on the LAN
	p.MustRun("ip", "addr", "add", otherHost+"/24", "dev", "vp")
	gw := netip.MustParseAddr(providerUplink)

	var group *net.UDPConn
	var tcpGW, tcpOther net.Listener
	if err := p.Do(func() (err error) {
		ifi, err := net.InterfaceByName("vp")
		if err != nil {
			return err
		}
		if group, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: net.ParseIP("239.255.255.250"), Port: 1900}); err != nil {
			return err
		}
		if tcpGW, err = net.Listen("tcp4", providerUplink+":5000"); err != nil {
			return err
		}
		tcpOther, err = net.Listen("tcp4", otherHost+":5000")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	defer tcpGW.Close()
	defer tcpOther.Close()
	for _, l := range []net.Listener{tcpGW, tcpOther} {
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}()
	}

	var pm, ice, plain *net.UDPConn
	if err := c.Do(func() error {
		for _, s := range []struct {
			conn **net.UDPConn
			mark int
		}{{&pm, PortMapMark}, {&ice, SocketMark}, {&plain, 0}} {
			lc := net.ListenConfig{}
			if s.mark != 0 {
				lc.Control = markWith(s.mark)
			}
			pc, err := lc.ListenPacket(t.Context(), "udp4", consumerAddr+":0")
			if err != nil {
				return err
			}
			*s.conn = pc.(*net.UDPConn)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	defer ice.Close()
	defer plain.Close()

	ks, err := killSwitchRuleset{Table: DefaultKillSwitchTable, Iface: "myst0", Hold: true, PortMapGateway: gw}.render()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Nft(t.Context(), ks); err != nil {
		t.Fatal(err)
	}

	// SSDP: only the marked socket's search reaches the group.
	ssdp := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("239.255.255.250:1900"))
	for _, s := range []*net.UDPConn{plain, ice} {
		_, _ = s.WriteToUDP([]byte("leak"), ssdp)
	}
	if _, err := pm.WriteToUDP([]byte("search"), ssdp); err != nil {
		t.Fatalf("marked SSDP search: %v", err)
	}
	if got := readAll(t, group, "search"); got["leak"] != 0 || got["search"] != 1 {
		t.Fatalf("the SSDP group received %v: want only the port-mapping socket's search", got)
	}

	// The answers: from the gateway's address (any port: routers answer
	// from 1900 or another) to the marked socket only.
	answerers := listenUDPIn(t, p, providerUplink+":1901", otherHost+":1901")
	fromGW, fromOther := answerers[0], answerers[1]
	for _, to := range []*net.UDPConn{plain, ice, pm} {
		_, _ = fromOther.WriteToUDP([]byte("stranger"), to.LocalAddr().(*net.UDPAddr))
		_, _ = fromGW.WriteToUDP([]byte("answer"), to.LocalAddr().(*net.UDPAddr))
	}
	if got := readAll(t, pm, "answer"); got["answer"] != 1 || got["stranger"] != 0 {
		t.Fatalf("the port-mapping socket received %v: want the gateway's answer only", got)
	}
	for name, s := range map[string]*net.UDPConn{"unmarked": plain, "ICE": ice} {
		if got := readAll(t, s, ""); len(got) != 0 {
			t.Fatalf("the %s socket received %v from outside the tunnel", name, got)
		}
	}

	// HTTP: marked TCP to the gateway only.
	dial := func(mark int, to string) error {
		return c.Do(func() error {
			d := net.Dialer{Timeout: 2 * time.Second}
			if mark != 0 {
				d.Control = markWith(mark)
			}
			conn, err := d.DialContext(t.Context(), "tcp4", to)
			if err == nil {
				conn.Close()
			}
			return err
		})
	}
	if err := dial(PortMapMark, providerUplink+":5000"); err != nil {
		t.Fatalf("marked TCP to the gateway: %v", err)
	}
	for _, d := range []struct {
		mark int
		to   string
	}{{0, providerUplink + ":5000"}, {SocketMark, providerUplink + ":5000"}, {PortMapMark, otherHost + ":5000"}} {
		if err := dial(d.mark, d.to); err == nil {
			t.Fatalf("TCP with mark %#x to %s got through the kill switch", d.mark, d.to)
		}
	}
}

// markWith is a socket Control that sets SO_MARK to mark.
func markWith(mark int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, mark)
		}); err != nil {
			return err
		}
		return serr
	}
}

// listenUDPIn opens a UDP socket in ns on each address, closed when the
// test ends.
func listenUDPIn(t *testing.T, ns *netns.NS, addrs ...string) []*net.UDPConn {
	t.Helper()
	var out []*net.UDPConn
	if err := ns.Do(func() error {
		for _, a := range addrs {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(a)))
			if err != nil {
				return err
			}
			t.Cleanup(func() { c.Close() })
			out = append(out, c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
