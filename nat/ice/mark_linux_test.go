package ice

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pion "github.com/pion/ice/v4"
	"golang.org/x/sys/unix"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/nat/punch"
)

const testMark = 0x6d7901ce

// sockMark reads SO_MARK of c's socket.
func sockMark(t *testing.T, c syscall.Conn) uint32 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return uint32(v)
}

// TestMarkedNetMarksSockets: every socket the agent's network opens, UDP
// and TCP, listening and dialled, carries the mark.
func TestMarkedNetMarksSockets(t *testing.T) {
	testenv.RequireRoot(t)
	n, err := newMarkedNet(testMark)
	if err != nil {
		t.Fatal(err)
	}
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	u, err := n.ListenUDP("udp4", lo)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	pc, err := n.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	du, err := n.DialUDP("udp4", nil, u.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer du.Close()
	ln, err := n.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan error, 3)
	go func() {
		for i := 0; i < 3; i++ {
			c, err := ln.AcceptTCP()
			if err == nil {
				err = c.Close()
			}
			accepted <- err
		}
	}()
	tcpAddr := ln.Addr().(*net.TCPAddr)
	dt, err := n.DialTCP("tcp4", nil, tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer dt.Close()
	d, err := n.Dial("tcp4", tcpAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dd, err := n.CreateDialer(&net.Dialer{Timeout: time.Second}).Dial("tcp4", tcpAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	for i := 0; i < 3; i++ {
		if err := <-accepted; err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]any{"ListenUDP": u, "ListenPacket": pc, "DialUDP": du, "ListenTCP": ln, "DialTCP": dt, "Dial": d, "CreateDialer": dd} {
		sc, ok := c.(syscall.Conn)
		if !ok {
			t.Fatalf("%s: %T has no socket", name, c)
		}
		if m := sockMark(t, sc); m != testMark {
			t.Errorf("%s: socket mark %#x, want %#x", name, m, testMark)
		}
	}
	// Without the mark a socket has none (the check can fail).
	plain, err := net.ListenUDP("udp4", lo)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if m := sockMark(t, plain); m != 0 {
		t.Fatalf("an ordinary socket has mark %#x", m)
	}
}

// TestAgentMarksItsSockets: an agent with Config.SocketMark gathers from
// marked sockets only (read back with ss), and marks the Mux it uses.
func TestAgentMarksItsSockets(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "ss")
	cfg := Config{Loopback: true, Policy: CandidatePolicy{AllowPrivate: true}, GatherTimeout: 2 * time.Second, SocketMark: testMark}
	a, raw, err := Start(context.Background(), cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var offer Offer
	if err := json.Unmarshal(raw, &offer); err != nil {
		t.Fatal(err)
	}
	if len(offer.Candidates) == 0 {
		t.Fatal("no candidates")
	}
	for _, s := range offer.Candidates {
		c, err := pion.UnmarshalCandidate(s)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ss", "-uanHe", fmt.Sprintf("sport = :%d", c.Port())).CombinedOutput()
		if err != nil {
			t.Fatalf("ss: %v: %s", err, out)
		}
		if !strings.Contains(string(out), "fwmark:"+"0x"+strconv.FormatUint(testMark, 16)) {
			t.Errorf("candidate %s: socket not marked:\n%s", s, out)
		}
	}

	m, err := ListenMux(netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := sockMark(t, m.conn); got != 0 {
		t.Fatalf("fresh mux socket has mark %#x", got)
	}
	b, err := NewAgent(Config{Mux: m, SocketMark: testMark}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := sockMark(t, m.conn); got != testMark {
		t.Fatalf("mux socket mark %#x after an agent with SocketMark used it, want %#x", got, testMark)
	}
}

// TestPunchSocketsMarked: the punch sockets of an agent with
// Config.SocketMark carry the mark like its ICE sockets.
func TestPunchSocketsMarked(t *testing.T) {
	testenv.RequireRoot(t)
	a, err := NewAgent(Config{Servers: []Server{{URL: "stun:25.0.0.1:3478"}, {URL: "stun:25.0.0.2:3478"}}, Punch: &punch.Config{}, SocketMark: testMark}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pc, ok := a.punchConfig()
	if !ok || pc.Control == nil {
		t.Fatalf("punch config %v, control %v", ok, pc.Control != nil)
	}
	lc := net.ListenConfig{Control: pc.Control}
	c, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := sockMark(t, c.(*net.UDPConn)); got != testMark {
		t.Fatalf("punch socket mark %#x, want %#x", got, testMark)
	}
}
