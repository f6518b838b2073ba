package userspace

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/openmyst/openmyst/tunnel/connbind/connbindtest"

	"go.uber.org/goleak"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/tunnel"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testLog() *slog.Logger { return testenv.Logger() }

type pair struct {
	exit   *Exit
	client *Client
	pool   *tunnel.AddressPool
	lease  tunnel.Lease
	key    tunnel.PrivateKey
}

// newPair starts an exit on 127.0.0.1 with policy and a client connected to
// it with SOCKS5 and HTTP proxies on 127.0.0.1.
func newPair(t *testing.T, policy *tunnel.ExitPolicy, dns netip.AddrPort, limit uint64, opts ...func(*ExitConfig)) *pair {
	t.Helper()
	return newPairOver(t, nil, nil, policy, dns, limit, opts...)
}

// newPairOver is newPair with the tunnel's datagrams carried over the
// connections exitConn (the exit's end) and clientConn instead of UDP,
// when they are not nil.
func newPairOver(t *testing.T, exitConn, clientConn net.Conn, policy *tunnel.ExitPolicy, dns netip.AddrPort, limit uint64, opts ...func(*ExitConfig)) *pair {
	t.Helper()
	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := tunnel.GenerateKey()
	v4, v6 := pool.Ranges()
	if !dns.IsValid() {
		dns = netip.MustParseAddrPort("127.0.0.1:9") // unused
	}
	cfg := ExitConfig{
		PrivateKey:   ek,
		ListenAddr:   netip.MustParseAddr("127.0.0.1"),
		Gateway:      pool.Gateway(),
		TunnelRanges: []netip.Prefix{v4, v6},
		Policy:       policy,
		DNSUpstream:  dns,
		DialTimeout:  3 * time.Second,
		Log:          testLog(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	exit, err := NewExit(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exit.Close() })
	lease, err := pool.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	ck, _ := tunnel.GenerateKey()
	ctx := context.Background()
	if err := exit.AddPeer(ctx, tunnel.PeerConfig{PublicKey: ck.PublicKey(), AllowedIPs: lease.Prefixes(), BandwidthLimit: limit, Conn: exitConn}); err != nil {
		t.Fatal(err)
	}
	client, err := Connect(ctx, ClientConfig{
		Session: tunnel.SessionConfig{
			PrivateKey:    ck,
			Addresses:     lease.Prefixes(),
			DNS:           []netip.Addr{pool.Gateway().V4},
			PeerPublicKey: exit.PublicKey(),
			Endpoint:      exit.Endpoint(),
			AllowedIPs:    tunnel.FullTunnel(),
		},
		SOCKSListen: "127.0.0.1:0",
		HTTPListen:  "127.0.0.1:0",
		Log:         testLog(),
		Conn:        clientConn,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return &pair{exit: exit, client: client, pool: pool, lease: lease, key: ck}
}

func socksClient(p *pair) *http.Client {
	u := &url.URL{Scheme: "socks5", Host: p.client.SOCKSAddr().String()}
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u), DisableKeepAlives: true}, Timeout: 60 * time.Second}
}

func bodyServer(t *testing.T, body []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// randomBody returns n random bytes to download: a body no compression
// or pattern in the path could shortcut.
func randomBody(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// allowServer is an exit policy that allows exactly srv's TCP port on
// 127.0.0.1 (an httptest server is reachable through the tunnel only
// with an operator allow rule).
func allowServer(t *testing.T, srv *httptest.Server) *tunnel.ExitPolicy {
	t.Helper()
	return allowPort(t, "tcp", srv.Listener.Addr().(*net.TCPAddr).Port)
}

func allowPort(t *testing.T, proto string, port int) *tunnel.ExitPolicy {
	t.Helper()
	r, err := tunnel.ParseRule(fmt.Sprintf("%s:127.0.0.1 port %d", proto, port))
	if err != nil {
		t.Fatal(err)
	}
	p, err := tunnel.NewExitPolicy(tunnel.PolicyConfig{
		Allow:    []tunnel.Rule{r},
		OwnAddrs: []netip.Addr{netip.MustParseAddr("203.0.113.5")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTransferAndCounters fetches 10 MiB through SOCKS5 -> tunnel -> exit.
// The httptest server on 127.0.0.1 is reachable only because the test
// passes an operator allow rule for exactly its port.
func TestTransferAndCounters(t *testing.T) {
	const size = 10 << 20
	body := randomBody(size)
	srv := bodyServer(t, body)
	p := newPair(t, allowServer(t, srv), netip.AddrPort{}, 0)

	before := p.client.Stats()
	pb, _ := p.exit.PeerStats(p.key.PublicKey())
	resp, err := socksClient(p).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("body mismatch: got %d bytes", len(got))
	}
	// Counters settle once the last ACKs went through.
	var cs, ps tunnel.PeerStats
	deadline := time.Now().Add(5 * time.Second)
	for {
		cs = p.client.Stats()
		ps, _ = p.exit.PeerStats(p.key.PublicKey())
		if cs.RxBytes-before.RxBytes == ps.TxBytes-pb.TxBytes && cs.TxBytes-before.TxBytes == ps.RxBytes-pb.RxBytes || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	down := float64(cs.RxBytes - before.RxBytes)
	provDown := float64(ps.TxBytes - pb.TxBytes)
	t.Logf("body %d, consumer rx %d tx %d, provider tx %d rx %d (%.1f%% over the body)",
		size, cs.RxBytes, cs.TxBytes, ps.TxBytes, ps.RxBytes, 100*(down/size-1))
	if d := (down - provDown) / provDown; d > 0.02 || d < -0.02 {
		t.Errorf("consumer rx %v and provider tx %v differ by %.2f%%", down, provDown, 100*d)
	}
	// What is counted is WireGuard messages: the transfer in MSS-sized
	// segments (1420 MTU - 20 IP - 32 TCP with timestamps = 1368 bytes),
	// each carried in a full 1420-byte packet plus 32 bytes of WireGuard
	// header and tag. The counters must match that model within 2%.
	const mss, perPacket = 1368, 1420 + 32
	model := float64((size+mss-1)/mss) * perPacket
	if d := (down - model) / model; d > 0.02 || d < -0.02 {
		t.Errorf("consumer counted %v bytes; the %d byte transfer models as %v (%.2f%% off)", down, size, model, 100*d)
	}
	if cs.LastHandshake.IsZero() || ps.LastHandshake.IsZero() {
		t.Error("handshake time not reported")
	}
	if p.exit.Blocked() != 0 {
		t.Errorf("blocked %d flows in the allowed case", p.exit.Blocked())
	}
}

func TestExitPolicyThroughTunnel(t *testing.T) {
	srv := bodyServer(t, []byte("hello"))
	other := bodyServer(t, []byte("secret"))
	p := newPair(t, allowServer(t, srv), netip.AddrPort{}, 0)
	hc := socksClient(p)
	hc.Timeout = 10 * time.Second

	blocked := []string{
		other.URL, // 127.0.0.1, a port not allowed
		"http://10.0.0.1/", "http://10.255.1.2:8080/", "http://192.168.0.1/", "http://192.168.1.1/",
		"http://169.254.169.254/latest/meta-data", "http://172.16.0.1/", "http://100.64.0.1/",
		"http://203.0.113.5/",                             // the node's own address (explicit in the test policy)
		"http://" + p.pool.Gateway().V4.String() + ":80/", // the provider's tunnel address
		"http://[::1]:80/", "http://[fd00::1]:80/",
	}
	for i, u := range blocked {
		resp, err := hc.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: reached through the tunnel", u)
			continue
		}
		if got := p.exit.Blocked(); got != uint64(i+1) {
			t.Errorf("%s: blocked counter %d, want %d (err %v)", u, got, i+1, err)
		}
	}
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatalf("allowed destination: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" {
		t.Fatalf("allowed destination body %q", b)
	}
}

func TestHTTPProxy(t *testing.T) {
	srv := bodyServer(t, []byte("via http proxy"))
	p := newPair(t, allowServer(t, srv), netip.AddrPort{}, 0)
	proxyURL := &url.URL{Scheme: "http", Host: p.client.HTTPAddr().String()}
	for _, tr := range []*http.Transport{
		{Proxy: http.ProxyURL(proxyURL)}, // plain absolute-URI forwarding
		{Proxy: http.ProxyURL(proxyURL), ProxyConnectHeader: http.Header{"X": {"1"}}, ForceAttemptHTTP2: false},
	} {
		hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := hc.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "via http proxy" {
			t.Fatalf("body %q", b)
		}
		tr.CloseIdleConnections()
	}
	// CONNECT explicitly.
	c, err := net.Dial("tcp", p.client.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", srv.Listener.Addr(), srv.Listener.Addr())
	c.SetDeadline(time.Now().Add(10 * time.Second))
	all, _ := io.ReadAll(c)
	if !bytes.HasPrefix(all, []byte("HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK")) || !bytes.HasSuffix(all, []byte("via http proxy")) {
		t.Fatalf("CONNECT response %q", all)
	}
	// CONNECT to a blocked destination gives 502.
	c2, err := net.Dial("tcp", p.client.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "CONNECT 10.1.1.1:443 HTTP/1.1\r\nHost: 10.1.1.1:443\r\n\r\n")
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	line := make([]byte, 12)
	io.ReadFull(c2, line)
	if string(line) != "HTTP/1.1 502" {
		t.Fatalf("blocked CONNECT answered %q", line)
	}
}

func TestSOCKS5UDPAssociate(t *testing.T) {
	echo := servetest.UDPEcho(t)
	port := echo.LocalAddr().(*net.UDPAddr).Port
	p := newPair(t, allowPort(t, "udp", port), netip.AddrPort{}, 0)

	ctl, err := net.Dial("tcp", p.client.SOCKSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	ctl.SetDeadline(time.Now().Add(10 * time.Second))
	ctl.Write([]byte{5, 1, 0})
	resp := make([]byte, 2)
	if _, err := io.ReadFull(ctl, resp); err != nil || resp[1] != 0 {
		t.Fatalf("greeting: %v %v", resp, err)
	}
	ctl.Write([]byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0})
	rep := make([]byte, 10)
	if _, err := io.ReadFull(ctl, rep); err != nil || rep[1] != 0 || rep[3] != 1 {
		t.Fatalf("associate reply %v %v", rep, err)
	}
	relay := &net.UDPAddr{IP: net.IP(rep[4:8]), Port: int(rep[8])<<8 | int(rep[9])}
	uc, err := net.DialUDP("udp", nil, relay)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	dg := []byte{0, 0, 0, 1, 127, 0, 0, 1, byte(port >> 8), byte(port)}
	dg = append(dg, "ping"...)
	buf := make([]byte, 2048)
	var n int
	for try := 0; try < 20; try++ { // UDP: retry until the flow is set up
		uc.Write(dg)
		uc.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		if n, err = uc.Read(buf); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no UDP reply: %v", err)
	}
	if !bytes.Equal(buf[:10], dg[:10]) || string(buf[10:n]) != "echo:ping" {
		t.Fatalf("reply %q", buf[:n])
	}
	// A blocked UDP destination is counted and gets nothing.
	before := p.exit.Blocked()
	uc.Write(append([]byte{0, 0, 0, 1, 10, 0, 0, 1, 0, 53}, "x"...))
	deadline := time.Now().Add(5 * time.Second)
	for p.exit.Blocked() == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p.exit.Blocked() == before {
		t.Fatal("blocked UDP destination not counted")
	}
}

// dnsServer answers every A query with 198.51.100.42 and sends each
// queried name on names.
func dnsServer(t *testing.T, names chan<- string) netip.AddrPort {
	pc := servetest.ListenUDP(t)
	servetest.UDP(t, pc, func(data []byte, _ net.Addr) []byte {
		var m dnsmessage.Message
		if m.Unpack(data) != nil || len(m.Questions) != 1 {
			return nil
		}
		select {
		case names <- m.Questions[0].Name.String():
		default:
		}
		m.Response, m.RecursionAvailable = true, true
		if m.Questions[0].Type == dnsmessage.TypeA {
			m.Answers = []dnsmessage.Resource{{
				Header: dnsmessage.ResourceHeader{Name: m.Questions[0].Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
				Body:   &dnsmessage.AResource{A: [4]byte{198, 51, 100, 42}},
			}}
		}
		out, _ := m.Pack()
		return out
	})
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestDNSThroughTunnel(t *testing.T) {
	names := make(chan string, 16)
	dns := dnsServer(t, names)
	pol, _ := tunnel.NewExitPolicy(tunnel.PolicyConfig{})
	p := newPair(t, pol, dns, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ips, err := p.client.LookupNetIP(ctx, "ip4", "service.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(ips) != 1 || ips[0] != netip.MustParseAddr("198.51.100.42") {
		t.Fatalf("resolved %v", ips)
	}
	if p.exit.Blocked() != 0 {
		t.Fatalf("DNS counted as blocked")
	}
	// Only the fully qualified name went out: no host search domains.
	for len(names) > 0 {
		if n := <-names; n != "service.example." {
			t.Errorf("provider's resolver saw %q", n)
		}
	}
}

func TestHandshakeTimeout(t *testing.T) {
	// A UDP socket that never answers stands in for an unreachable provider.
	silent, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ck, _ := tunnel.GenerateKey()
	pk, _ := tunnel.GenerateKey()
	_, err = Connect(context.Background(), ClientConfig{
		Session: tunnel.SessionConfig{
			PrivateKey:    ck,
			Addresses:     []netip.Prefix{netip.MustParsePrefix("10.182.0.2/32")},
			PeerPublicKey: pk.PublicKey(),
			Endpoint:      silent.LocalAddr().(*net.UDPAddr).AddrPort(),
			AllowedIPs:    tunnel.FullTunnel(),
		},
		HandshakeTimeout: 300 * time.Millisecond,
		Log:              testLog(),
	})
	if !errors.Is(err, tunnel.ErrHandshakeTimeout) {
		t.Fatalf("want ErrHandshakeTimeout, got %v", err)
	}
}

func TestPeerLifecycle(t *testing.T) {
	srv := bodyServer(t, []byte("x"))
	p := newPair(t, allowServer(t, srv), netip.AddrPort{}, 0)
	pub := p.key.PublicKey()
	if err := p.exit.AddPeer(context.Background(), tunnel.PeerConfig{PublicKey: pub, AllowedIPs: p.lease.Prefixes()}); err == nil {
		t.Fatal("duplicate peer accepted")
	}
	other, _ := tunnel.GenerateKey()
	if err := p.exit.AddPeer(context.Background(), tunnel.PeerConfig{PublicKey: other.PublicKey(), AllowedIPs: p.lease.Prefixes()}); err == nil {
		t.Fatal("address reuse accepted")
	}
	if err := p.exit.RemovePeer(pub); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.exit.PeerStats(pub); ok {
		t.Fatal("removed peer still has stats")
	}
	if err := p.exit.RemovePeer(pub); !errors.Is(err, tunnel.ErrUnknownPeer) {
		t.Fatalf("second remove: %v", err)
	}
	hc := socksClient(p)
	hc.Timeout = 2 * time.Second
	if resp, err := hc.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatal("removed peer still reaches the internet")
	}
}

func TestBandwidthLimit(t *testing.T) {
	const limit = 1 << 20 // 1 MiB/s
	const size = 3 << 19  // 1.5 MiB
	body := make([]byte, size)
	srv := bodyServer(t, body)
	p := newPair(t, allowServer(t, srv), netip.AddrPort{}, limit)
	start := time.Now()
	resp, err := socksClient(p).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if n != size {
		t.Fatalf("got %d bytes", n)
	}
	// A token bucket with an eighth of a second of burst cannot deliver
	// size bytes faster than (size - burst) / limit: a lower bound that
	// holds however slow the machine is.
	minimum := time.Duration(float64(size-limit/8) / limit * float64(time.Second))
	if elapsed < minimum {
		t.Fatalf("1.5 MiB at 1 MiB/s took %v, faster than the limit allows (%v)", elapsed, minimum)
	}
	t.Logf("1.5 MiB at a 1 MiB/s limit took %v", elapsed)
}

func TestIPv6ThroughTunnel(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		testenv.SkipOrFail(t, "no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "v6 from "+r.RemoteAddr)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	r, _ := tunnel.ParseRule(fmt.Sprintf("tcp:::1 port %d", port))
	pol, _ := tunnel.NewExitPolicy(tunnel.PolicyConfig{Allow: []tunnel.Rule{r}})
	p := newPair(t, pol, netip.AddrPort{}, 0)
	resp, err := socksClient(p).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b[:len("v6 from [::1]:")]) != "v6 from [::1]:" {
		t.Fatalf("body %q", b)
	}
}

// endless streams zeros until the client goes away, then closes gone.
func endless(t *testing.T) (*httptest.Server, chan struct{}) {
	buf := make([]byte, 32<<10)
	gone := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { gone <- struct{}{} }()
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, gone
}

// endlessTransfer starts an endless server and a pair allowed to reach
// it, and fetches from the server through the pair until 1 MiB arrived;
// the transfer then keeps running (its response is closed when the test
// ends). It returns the pair, endless's gone channel and the rest of the
// response body.
func endlessTransfer(t *testing.T) (*pair, chan struct{}, io.Reader) {
	t.Helper()
	srv, gone := endless(t)
	p := newPair(t, allowServer(t, srv), netip.AddrPort{}, 0)
	resp, err := socksClient(p).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	return p, gone, resp.Body
}

// TestRemovePeerEndsFlows checks that removing a peer cuts its running
// transfer on the exit's host side (the consumer hears nothing more: its
// peer is gone), and via goleak in TestMain that nothing is left running.
func TestRemovePeerEndsFlows(t *testing.T) {
	p, gone, _ := endlessTransfer(t)
	if err := p.exit.RemovePeer(p.key.PublicKey()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gone:
	case <-time.After(30 * time.Second):
		t.Fatal("exit still pulls from the server 30s after RemovePeer")
	}
	p.client.Close() // ends the consumer side, which cannot hear the exit any more
}

// TestCloseDuringTransfer closes both ends mid-transfer; goleak in TestMain
// then proves every goroutine stopped.
func TestCloseDuringTransfer(t *testing.T) {
	p, _, body := endlessTransfer(t)
	closed := make(chan struct{})
	go func() {
		p.exit.Close()
		p.client.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close blocked with a flow running")
	}
	if _, err := io.Copy(io.Discard, body); err == nil {
		t.Fatal("transfer ended cleanly after Close")
	}
}

// TestListenAddrBindsOnlyThere checks that ListenAddr keeps the exit's UDP
// port off other addresses: another socket can still take the same port on
// 127.0.0.2, which a wildcard bind would refuse.
func TestListenAddrBindsOnlyThere(t *testing.T) {
	pol, _ := tunnel.NewExitPolicy(tunnel.PolicyConfig{})
	p := newPair(t, pol, netip.AddrPort{}, 0)
	ep := p.exit.Endpoint()
	if ep.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("endpoint %v", ep)
	}
	other, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: int(ep.Port())})
	if err != nil {
		t.Fatalf("port %d taken beyond 127.0.0.1: %v", ep.Port(), err)
	}
	other.Close()
}

// socksConnect opens a SOCKS5 CONNECT to dst and reports the reply code.
func socksConnect(t *testing.T, socks string, dst *net.TCPAddr) (net.Conn, byte) {
	t.Helper()
	c, err := net.Dial("tcp", socks)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	ip := dst.IP.To4()
	c.Write([]byte{5, 1, 0, 5, 1, 0, 1, ip[0], ip[1], ip[2], ip[3], byte(dst.Port >> 8), byte(dst.Port)})
	rep := make([]byte, 12)
	if _, err := io.ReadFull(c, rep); err != nil {
		c.Close()
		return nil, 0xff
	}
	c.SetDeadline(time.Time{})
	return c, rep[3]
}

func TestMaxFlowsPerPeer(t *testing.T) {
	dst := servetest.TCPEcho(t)
	p := newPair(t, allowPort(t, "tcp", dst.Port), netip.AddrPort{}, 0, func(c *ExitConfig) { c.MaxFlowsPerPeer = 2 })
	socks := p.client.SOCKSAddr().String()
	c1, code := socksConnect(t, socks, dst)
	if code != 0 {
		t.Fatalf("first flow refused: %d", code)
	}
	c2, code := socksConnect(t, socks, dst)
	if code != 0 {
		t.Fatalf("second flow refused: %d", code)
	}
	defer c2.Close()
	if c3, code := socksConnect(t, socks, dst); code == 0 {
		c3.Close()
		t.Fatal("third flow admitted over a cap of 2")
	}
	c1.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, code := socksConnect(t, socks, dst)
		if code == 0 {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flow slot not released after the first flow closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSeveralPeersSeparateCounters runs three consumers through one exit at
// once, each fetching a different amount, and checks that each peer's
// counters on the provider match that consumer's own.
func TestSeveralPeersSeparateCounters(t *testing.T) {
	body := make([]byte, 4<<20)
	srv := bodyServer(t, body)
	p := newPair(t, allowServer(t, srv), netip.AddrPort{}, 0)
	type consumer struct {
		c     *Client
		pub   tunnel.PublicKey
		fetch int
	}
	cons := []consumer{{c: p.client, pub: p.key.PublicKey(), fetch: 1}}
	for _, fetch := range []int{2, 3} {
		lease, err := p.pool.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		k, _ := tunnel.GenerateKey()
		if err := p.exit.AddPeer(context.Background(), tunnel.PeerConfig{PublicKey: k.PublicKey(), AllowedIPs: lease.Prefixes()}); err != nil {
			t.Fatal(err)
		}
		c, err := Connect(context.Background(), ClientConfig{
			Session: tunnel.SessionConfig{PrivateKey: k, Addresses: lease.Prefixes(), PeerPublicKey: p.exit.PublicKey(),
				Endpoint: p.exit.Endpoint(), AllowedIPs: tunnel.FullTunnel()},
			SOCKSListen: "127.0.0.1:0", Log: testLog(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cons = append(cons, consumer{c: c, pub: k.PublicKey(), fetch: fetch})
	}
	errs := make(chan error, len(cons))
	for _, cn := range cons {
		go func() {
			u := &url.URL{Scheme: "socks5", Host: cn.c.SOCKSAddr().String()}
			hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u), DisableKeepAlives: true}, Timeout: 60 * time.Second}
			for range cn.fetch {
				resp, err := hc.Get(srv.URL)
				if err != nil {
					errs <- err
					return
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && n != int64(len(body)) {
					err = fmt.Errorf("short body %d", n)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range cons {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, cn := range cons {
		for {
			cs := cn.c.Stats()
			ps, ok := p.exit.PeerStats(cn.pub)
			if !ok {
				t.Fatalf("no provider stats for %s", cn.pub)
			}
			if cs.RxBytes == ps.TxBytes && cs.TxBytes == ps.RxBytes {
				// At least the bodies; less than one body more, so another
				// consumer's traffic counted here would show. Headers and
				// retransmissions add to the count: three flows at once on
				// a loaded machine lose datagrams on loopback (counted 14-17%
				// over the bodies in 2 of 16 runs, above the 10% this
				// allowed before).
				want := cn.fetch * len(body)
				if got := int(cs.RxBytes); got < want || got >= want+len(body)*3/4 {
					t.Errorf("consumer fetching %d bodies counted %d bytes, want %d plus less than %d", cn.fetch, got, want, len(body)*3/4)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: consumer rx/tx %d/%d, provider tx/rx %d/%d", cn.pub, cs.RxBytes, cs.TxBytes, ps.TxBytes, ps.RxBytes)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// fetchBody GETs url through p's SOCKS5 proxy and fails t unless the
// body is want.
func fetchBody(t *testing.T, p *pair, url string, want []byte) {
	t.Helper()
	resp, err := socksClient(p).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("body: %d bytes, %v", len(got), err)
	}
}

// TestPeerOverConnection carries a session's datagrams over a connection
// (as ICE through NATs does) instead of the exit's UDP socket: the
// transfer arrives whole, both sides count it, and removing the peer
// closes the connection.
func TestPeerOverConnection(t *testing.T) {
	body := randomBody(2 << 20)
	srv := bodyServer(t, body)
	exitEnd, clientEnd := connbindtest.UDPPair(t)
	p := newPairOver(t, exitEnd, clientEnd, allowServer(t, srv), netip.AddrPort{}, 0)

	fetchBody(t, p, srv.URL, body)
	ps, _ := p.exit.PeerStats(p.key.PublicKey())
	if ps.TxBytes < uint64(len(body)) {
		t.Fatalf("exit sent %d bytes for a %d byte body", ps.TxBytes, len(body))
	}
	if err := p.exit.RemovePeer(p.key.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if _, err := exitEnd.Write([]byte("x")); err == nil {
		t.Fatal("the exit's end of the connection is still open after RemovePeer")
	}
}

// TestAttachConnAfterAdmission admits a peer without a connection (as a
// provider does before ICE has selected a path), then attaches one: the
// tunnel comes up over it.
func TestAttachConnAfterAdmission(t *testing.T) {
	body := randomBody(256 << 10)
	srv := bodyServer(t, body)
	exitEnd, clientEnd := connbindtest.UDPPair(t)
	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := tunnel.GenerateKey()
	v4, v6 := pool.Ranges()
	exit, err := NewExit(ExitConfig{
		PrivateKey: ek, ListenAddr: netip.MustParseAddr("127.0.0.1"), Gateway: pool.Gateway(),
		TunnelRanges: []netip.Prefix{v4, v6}, Policy: allowServer(t, srv),
		DNSUpstream: netip.MustParseAddrPort("127.0.0.1:9"), DialTimeout: 3 * time.Second, Log: testLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exit.Close() })
	lease, _ := pool.Allocate()
	ck, _ := tunnel.GenerateKey()
	ctx := context.Background()
	other, _ := tunnel.GenerateKey()
	stray, _ := connbindtest.UDPPair(t)
	if err := exit.AttachConn(other.PublicKey(), stray); !errors.Is(err, tunnel.ErrUnknownPeer) {
		t.Fatalf("attach to an unknown peer: %v, want ErrUnknownPeer", err)
	}
	if _, err := stray.Write([]byte("x")); err == nil {
		t.Fatal("a refused connection was left open")
	}
	if err := exit.AddPeer(ctx, tunnel.PeerConfig{PublicKey: ck.PublicKey(), AllowedIPs: lease.Prefixes()}); err != nil {
		t.Fatal(err)
	}
	var _ tunnel.ConnAttacher = exit
	if err := exit.AttachConn(ck.PublicKey(), exitEnd); err != nil {
		t.Fatal(err)
	}
	client, err := Connect(ctx, ClientConfig{
		Session: tunnel.SessionConfig{
			PrivateKey: ck, Addresses: lease.Prefixes(), PeerPublicKey: exit.PublicKey(),
			Endpoint: exit.Endpoint(), AllowedIPs: tunnel.FullTunnel(),
		},
		SOCKSListen: "127.0.0.1:0", Log: testLog(), Conn: clientEnd,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	p := &pair{exit: exit, client: client, pool: pool, lease: lease, key: ck}
	fetchBody(t, p, srv.URL, body)
	if err := exit.RemovePeer(ck.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if _, err := exitEnd.Write([]byte("x")); err == nil {
		t.Fatal("the attached connection is still open after RemovePeer")
	}
}
