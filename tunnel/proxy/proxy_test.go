package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hostNet is a Network over the host's own sockets (loopback in tests).
type hostNet struct{ d net.Dialer }

func (h *hostNet) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(host); err != nil {
		ips, err := h.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		address = net.JoinHostPort(ips[0].String(), port)
	}
	return h.d.DialContext(ctx, network, address)
}
func (h *hostNet) ListenPacket(ctx context.Context, network string) (net.PacketConn, error) {
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, network, "127.0.0.1:0")
}
func (h *hostNet) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if host == "echo.test" {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, errors.New("no such host")
}

func quiet() *slog.Logger { return testenv.Logger() }

func startSOCKS(t *testing.T) string { return startProxy(t, NewSOCKS5(&hostNet{}, quiet())) }

// startProxy serves p on a loopback port until the test ends (and fails
// the test if Serve returns an error) and returns the port's address.
func startProxy(t *testing.T, p interface {
	Serve(context.Context, net.Listener) error
}) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func dialSOCKS(t *testing.T, addr string, req []byte) (net.Conn, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte{5, 1, 0})
	g := make([]byte, 2)
	if _, err := io.ReadFull(c, g); err != nil || !bytes.Equal(g, []byte{5, 0}) {
		t.Fatalf("greeting %v %v", g, err)
	}
	c.Write(req)
	rep := make([]byte, 4)
	if _, err := io.ReadFull(c, rep); err != nil {
		t.Fatalf("reply: %v", err)
	}
	return c, rep
}

func TestSOCKS5Connect(t *testing.T) {
	echo := servetest.TCPEcho(t)
	addr := startSOCKS(t)
	for _, req := range [][]byte{
		{5, 1, 0, 1, 127, 0, 0, 1, byte(echo.Port >> 8), byte(echo.Port)},
		append(append([]byte{5, 1, 0, 3, 9}, "echo.test"...), byte(echo.Port>>8), byte(echo.Port)),
	} {
		c, rep := dialSOCKS(t, addr, req)
		if rep[1] != repSucceeded {
			t.Fatalf("reply code %d", rep[1])
		}
		rest := make([]byte, 6) // IPv4 bound address + port
		io.ReadFull(c, rest)
		c.Write([]byte("hello"))
		got := make([]byte, 5)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "hello" {
			t.Fatalf("echo %q %v", got, err)
		}
		c.Close()
	}
}

func TestSOCKS5Refusals(t *testing.T) {
	addr := startSOCKS(t)
	// Closed port: connection refused.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cases := []struct {
		name string
		req  []byte
		code byte
	}{
		{"refused", []byte{5, 1, 0, 1, 127, 0, 0, 1, byte(port >> 8), byte(port)}, repConnectionRefused},
		{"bind", []byte{5, 2, 0, 1, 127, 0, 0, 1, 0, 80}, repCmdNotSupported},
		{"bad cmd", []byte{5, 9, 0, 1, 127, 0, 0, 1, 0, 80}, repCmdNotSupported},
		{"bad atyp", []byte{5, 1, 0, 7, 127, 0, 0, 1, 0, 80}, repAtypNotSupported},
		{"unresolvable", append(append([]byte{5, 1, 0, 3, 7}, "nx.test"...), 0, 80), repGeneralFailure},
	}
	for _, c := range cases {
		conn, rep := dialSOCKS(t, addr, c.req)
		if rep[1] != c.code {
			t.Errorf("%s: reply code %d, want %d", c.name, rep[1], c.code)
		}
		conn.Close()
	}
	// No acceptable auth method.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte{5, 1, 2})
	g := make([]byte, 2)
	if _, err := io.ReadFull(c, g); err != nil || g[1] != methodNoAcceptable {
		t.Fatalf("auth-only greeting answered %v %v", g, err)
	}
}

func TestReadRequest(t *testing.T) {
	good := map[string]struct {
		in   []byte
		want string
	}{
		"ipv4":         {[]byte{5, 1, 0, 1, 1, 2, 3, 4, 0, 80}, "1.2.3.4:80"},
		"ipv6":         {append(append([]byte{5, 1, 0, 4}, netip.MustParseAddr("2001:db8::1").AsSlice()...), 1, 187), "[2001:db8::1]:443"},
		"domain":       {append(append([]byte{5, 1, 0, 3, 11}, "example.com"...), 0, 80), "example.com:80"},
		"ip as domain": {append(append([]byte{5, 1, 0, 3, 7}, "1.2.3.4"...), 0, 80), "1.2.3.4:80"},
		"udp port 0":   {[]byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0}, "0.0.0.0:0"},
	}
	for name, c := range good {
		r, err := ReadRequest(bytes.NewReader(c.in))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if r.Addr.String() != c.want {
			t.Errorf("%s: %s, want %s", name, r.Addr, c.want)
		}
	}
	bad := map[string][]byte{
		"version":      {4, 1, 0, 1, 1, 2, 3, 4, 0, 80},
		"reserved":     {5, 1, 1, 1, 1, 2, 3, 4, 0, 80},
		"short":        {5, 1, 0, 1, 1, 2},
		"empty domain": {5, 1, 0, 3, 0, 0, 80},
		"nul domain":   {5, 1, 0, 3, 1, 0, 0, 80},
		"port 0":       {5, 1, 0, 1, 1, 2, 3, 4, 0, 0},
		"bind":         {5, 2, 0, 1, 1, 2, 3, 4, 0, 80},
	}
	for name, in := range bad {
		if _, err := ReadRequest(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 1, 1, 2, 3, 4, 0, 80})
	f.Add(append(append([]byte{5, 1, 0, 3, 11}, "example.com"...), 0, 80))
	f.Add([]byte{5, 3, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 53})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		// A parsed address re-encodes to a request that parses the same.
		enc := appendAddr([]byte{5, r.Cmd, 0}, r.Addr)
		r2, err := ReadRequest(bytes.NewReader(enc))
		if err != nil || r2 != r {
			t.Fatalf("re-encode %v -> %v (%v)", r, r2, err)
		}
	})
}

func FuzzParseUDPDatagram(f *testing.F) {
	f.Add(AppendUDPDatagram(nil, Addr{IP: netip.MustParseAddr("1.2.3.4"), Port: 53}, []byte("q")))
	f.Add(AppendUDPDatagram(nil, Addr{Name: "example.com", Port: 53}, nil))
	f.Add([]byte{0, 0, 1, 1, 1, 2, 3, 4, 0, 53})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, payload, err := ParseUDPDatagram(data)
		if err != nil {
			return
		}
		enc := AppendUDPDatagram(nil, a, payload)
		a2, p2, err := ParseUDPDatagram(enc)
		if err != nil || a2 != a || !bytes.Equal(p2, payload) {
			t.Fatalf("re-encode mismatch: %v %v %v", a, a2, err)
		}
	})
}

func TestUDPDatagramRejects(t *testing.T) {
	for name, in := range map[string][]byte{
		"short":    {0, 0},
		"rsv":      {1, 0, 0, 1, 1, 2, 3, 4, 0, 53},
		"frag":     {0, 0, 1, 1, 1, 2, 3, 4, 0, 53},
		"port 0":   {0, 0, 0, 1, 1, 2, 3, 4, 0, 0},
		"bad atyp": {0, 0, 0, 9, 1, 2, 3, 4, 0, 53},
		"trunc":    {0, 0, 0, 4, 1, 2, 3},
	} {
		if _, _, err := ParseUDPDatagram(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSOCKS5UDPAssociateDomainAndSource(t *testing.T) {
	echo := servetest.UDPEcho(t)
	port := echo.LocalAddr().(*net.UDPAddr).Port
	addr := startSOCKS(t)
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	myPort := uc.LocalAddr().(*net.UDPAddr).Port
	// Announce our exact source: datagrams from anywhere else are ignored.
	ctl, rep := dialSOCKS(t, addr, []byte{5, 3, 0, 1, 127, 0, 0, 1, byte(myPort >> 8), byte(myPort)})
	defer ctl.Close()
	if rep[1] != repSucceeded || rep[3] != atypIPv4 {
		t.Fatalf("associate reply %v", rep)
	}
	bnd := make([]byte, 6)
	io.ReadFull(ctl, bnd)
	relay := &net.UDPAddr{IP: net.IP(bnd[:4]), Port: int(bnd[4])<<8 | int(bnd[5])}

	dg := AppendUDPDatagram(nil, Addr{Name: "echo.test", Port: uint16(port)}, []byte("hi"))
	// A stranger's datagram is dropped.
	stranger, _ := net.DialUDP("udp", nil, relay)
	defer stranger.Close()
	stranger.Write(dg)
	stranger.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := stranger.Read(make([]byte, 100)); err == nil {
		t.Fatal("relay answered a source other than the announced one")
	}
	buf := make([]byte, 2048)
	var n int
	for try := 0; try < 20; try++ {
		uc.WriteTo(dg, relay)
		uc.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		if n, _, err = uc.ReadFrom(buf); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	src, payload, err := ParseUDPDatagram(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	if src.IP != netip.MustParseAddr("127.0.0.1") || src.Port != uint16(port) || string(payload) != "echo:hi" {
		t.Fatalf("reply from %v: %q", src, payload)
	}
}

// silentNet is a Network whose TCP connections reach a peer that accepts
// and then neither sends nor closes: a flow stuck inside the tunnel.
type silentNet struct {
	hostNet
	addr string
}

func (s *silentNet) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	return s.d.DialContext(ctx, network, s.addr)
}

// TestServeEndsWithStuckFlows: ending Serve's context ends every relayed
// connection, also one whose client has finished sending while the far
// side stays silent (a flow stalled in the tunnel). Serve used to close
// only the client's side and then wait for the relay, which waited for
// the silent side: the tunnel's Close, and with it Disconnect, hung.
func TestServeEndsWithStuckFlows(t *testing.T) {
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := peer.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		peer.Close()
		for len(accepted) > 0 {
			(<-accepted).Close()
		}
	}()
	for _, proxy := range []string{"socks5", "http"} {
		t.Run(proxy, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			n := &silentNet{addr: peer.Addr().String()}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				if proxy == "socks5" {
					done <- NewSOCKS5(n, quiet()).Serve(ctx, ln)
				} else {
					done <- NewHTTP(n, quiet()).Serve(ctx, ln)
				}
			}()
			var c net.Conn
			if proxy == "socks5" {
				c, _ = dialSOCKS(t, ln.Addr().String(), []byte{5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
			} else {
				if c, err = net.Dial("tcp", ln.Addr().String()); err != nil {
					t.Fatal(err)
				}
				c.Write([]byte("CONNECT 192.0.2.1:80 HTTP/1.1\r\nHost: 192.0.2.1:80\r\n\r\n"))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				line := make([]byte, 12)
				if _, err := io.ReadFull(c, line); err != nil || string(line) != "HTTP/1.1 200" {
					t.Fatalf("CONNECT: %q %v", line, err)
				}
			}
			defer c.Close()
			var far net.Conn
			select {
			case far = <-accepted:
				defer far.Close()
			case <-time.After(5 * time.Second):
				t.Fatal("the proxy did not connect to the far side")
			}
			// The client is done sending; the far side never answers.
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			// The relay has seen the half-close once the far side reads EOF.
			far.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(far); err != nil {
				t.Fatalf("far side: %v", err)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return after its context ended: a relay still waits for the silent far side")
			}
		})
	}
}
