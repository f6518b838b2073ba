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
	var recv, send *net.UDPConn
	if err := p.Do(func() (err error) {
		if recv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(providerUplink), Port: 9999}); err != nil {
			return err
		}
		send, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(providerUplink), Port: 9998})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	defer send.Close()

	const iceChecks = "ice-checks"
	var marked, other *net.UDPConn
	if err := c.Do(func() (err error) {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, SocketMark)
			}); err != nil {
				return err
			}
			return serr
		}}
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
	cmd := c.Command(t.Context(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ks)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %s", err, b)
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
