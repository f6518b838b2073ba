package relay

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"

	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/nat/netcheck"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func startRelay(t *testing.T, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		UDP:               "127.0.0.1:0",
		TCP:               "127.0.0.1:0",
		PublicIP:          netip.MustParseAddr("127.0.0.1"),
		RelayBind:         netip.MustParseAddr("127.0.0.1"),
		Secret:            testSecret,
		AllowPrivatePeers: true,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client makes a TURN client over UDP (or TCP) with credentials for user.
func client(t *testing.T, s *Server, tcp bool, user, password string) *turn.Client {
	t.Helper()
	var conn net.PacketConn
	server := s.Addrs().UDP.String()
	if tcp {
		c, err := net.Dial("tcp", s.Addrs().TCP.String())
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
		server = s.Addrs().TCP.String()
	} else {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = pc
	}
	if password == "" {
		var err error
		user, password, err = Credentials(testSecret, user, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server, TURNServerAddr: server,
		Username: user, Password: password, Realm: DefaultRealm,
		Conn: conn, RTO: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

// echoPeer answers every datagram with the same bytes.
func echoPeer(t *testing.T) net.PacketConn {
	t.Helper()
	pc := servetest.ListenUDP(t)
	servetest.UDP(t, pc, func(data []byte, _ net.Addr) []byte { return data })
	return pc
}

func roundTrip(t *testing.T, relayed net.PacketConn, peer net.Addr, msg []byte) error {
	t.Helper()
	if _, err := relayed.WriteTo(msg, peer); err != nil {
		return err
	}
	_ = relayed.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	n, from, err := relayed.ReadFrom(buf)
	if err != nil {
		return err
	}
	if from.String() != peer.String() || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("got %q from %v, want %q from %v", buf[:n], from, msg, peer)
	}
	return nil
}

func TestSTUNBinding(t *testing.T) {
	s := startRelay(t, nil)
	c := client(t, s, false, "u", "")
	addr, err := c.SendBindingRequest()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr.String(), "127.0.0.1:") {
		t.Fatalf("mapped address %v", addr)
	}
}

func TestRelayUDPAndTCP(t *testing.T) {
	s := startRelay(t, nil)
	peer := echoPeer(t)
	for _, tcp := range []bool{false, true} {
		c := client(t, s, tcp, "node", "")
		relayed, err := c.Allocate()
		if err != nil {
			t.Fatalf("allocate (tcp=%v): %v", tcp, err)
		}
		if err := roundTrip(t, relayed, peer.LocalAddr(), []byte("wireguard ciphertext")); err != nil {
			t.Fatalf("relay round trip (tcp=%v): %v", tcp, err)
		}
		relayed.Close()
	}
}

func TestRelayRefusesBadCredentials(t *testing.T) {
	s := startRelay(t, nil)
	user, _, err := Credentials(testSecret, "node", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(t, s, false, user, "d3Jvbmc=").Allocate(); err == nil {
		t.Fatal("allocated with a wrong password")
	}
	// Expired credentials: right HMAC, past expiry.
	user, pass, err := Credentials(testSecret, "node", -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(t, s, false, user, pass).Allocate(); err == nil {
		t.Fatal("allocated with expired credentials")
	}
	// Another relay's secret.
	user, pass, err = Credentials([]byte("another secret, 32 bytes long!!!"), "node", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(t, s, false, user, pass).Allocate(); err == nil {
		t.Fatal("allocated with another relay's credentials")
	}
}

func TestRelayRefusesPrivatePeers(t *testing.T) {
	s := startRelay(t, func(c *Config) { c.AllowPrivatePeers = false })
	peer := echoPeer(t)
	relayed, err := client(t, s, false, "node", "").Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relayed.Close()
	if err := roundTrip(t, relayed, peer.LocalAddr(), []byte("to the operator's loopback")); err == nil {
		t.Fatal("the relay forwarded to its own loopback")
	}
}

func TestRelayBoundsAllocations(t *testing.T) {
	s := startRelay(t, func(c *Config) { c.MaxAllocations = 1 })
	first, err := client(t, s, false, "a", "").Allocate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(t, s, false, "b", "").Allocate(); err == nil {
		t.Fatal("a second allocation past the maximum of one")
	}
	first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Allocations() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := client(t, s, false, "c", "").Allocate(); err != nil {
		t.Fatalf("no allocation after the first was released: %v", err)
	}
}

// TestRelayCapsBandwidth sends as fast as it can through a relay capped at
// 256 KiB/s and checks that what arrives is within the cap for the time it
// took (plus one burst).
func TestRelayCapsBandwidth(t *testing.T) {
	const capBps = 256 << 10
	s := startRelay(t, func(c *Config) { c.Bandwidth = capBps })
	sink, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	relayed, err := client(t, s, false, "node", "").Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relayed.Close()
	got := make(chan int)
	go func() {
		total := 0
		buf := make([]byte, 2048)
		for {
			_ = sink.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, _, err := sink.ReadFrom(buf)
			if err != nil {
				got <- total
				return
			}
			total += n
		}
	}()
	msg := make([]byte, 1200)
	start := time.Now()
	sent := 0
	for time.Since(start) < 1500*time.Millisecond {
		if _, err := relayed.WriteTo(msg, sink.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		sent += len(msg)
	}
	elapsed := time.Since(start)
	recv := <-got
	limit := int(float64(capBps)*elapsed.Seconds()) + max(capBps/10, 64<<10) + 64<<10
	t.Logf("sent %d B, received %d B in %v (cap %d B/s, bound %d B)", sent, recv, elapsed, capBps, limit)
	if sent <= limit {
		t.Fatalf("sent only %d B in %v, within the cap: the test proves nothing", sent, elapsed)
	}
	if recv > limit {
		t.Fatalf("received %d B through a relay capped at %d B/s over %v (bound %d)", recv, capBps, elapsed, limit)
	}
	if recv == 0 {
		t.Fatal("nothing arrived")
	}
}

// TestSTUNAltPort: the alternate STUN port answers Binding requests from
// the same socket as the UDP port (two destinations of one relay, which
// netcheck needs to tell the mapping), and refuses TURN allocations.
func TestSTUNAltPort(t *testing.T) {
	s := startRelay(t, func(c *Config) { c.STUNAlt = "127.0.0.1:0" })
	ad := s.Addrs()
	if !ad.STUNAlt.IsValid() || ad.STUNAlt.Port() == ad.UDP.Port() {
		t.Fatalf("addresses %+v", ad)
	}
	r, err := netcheck.Check(context.Background(), netcheck.Config{
		Servers: []string{ad.UDP.String(), ad.STUNAlt.String()}, AllowPrivate: true, Listen: "127.0.0.1:0", Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range r.Answers {
		if !a.Mapped.IsValid() || a.Mapped != r.Public {
			t.Fatalf("answers %+v", r.Answers)
		}
	}
	// STUN, not TURN, on the alternate port.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	user, pass, err := Credentials(testSecret, "node", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: ad.STUNAlt.String(), TURNServerAddr: ad.STUNAlt.String(),
		Username: user, Password: pass, Realm: DefaultRealm, Conn: pc, RTO: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendBindingRequest(); err != nil {
		t.Fatalf("binding on the alternate port: %v", err)
	}
	if relayed, err := c.Allocate(); err == nil {
		relayed.Close()
		t.Fatal("allocated on the alternate STUN port")
	}
	if s.Allocations() != 0 {
		t.Fatalf("%d allocations", s.Allocations())
	}
}

// TestSTUNAltOff: without STUNAlt no alternate port is opened.
func TestSTUNAltOff(t *testing.T) {
	if a := startRelay(t, nil).Addrs().STUNAlt; a.IsValid() {
		t.Fatalf("alternate STUN port %v without STUNAlt", a)
	}
}

// TestSTUNAltRateLimited: the alternate STUN port answers one source
// address at most STUNAltBurst requests at once (plus STUNAltRate per
// second); the UDP port, which carries TURN traffic too, answers them all.
func TestSTUNAltRateLimited(t *testing.T) {
	s := startRelay(t, func(c *Config) { c.STUNAlt = "127.0.0.1:0" })
	const n = 3 * STUNAltBurst
	// answered sends n requests to to and counts the answers; took runs
	// from the first request to the last answer, the latest the relay
	// could have taken a request it answered.
	answered := func(to netip.AddrPort) (count int, took time.Duration) {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 1500)
			for {
				_ = pc.SetReadDeadline(time.Now().Add(time.Second))
				k, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				var m stun.Message
				m.Raw = append([]byte(nil), buf[:k]...)
				if m.Decode() == nil && m.Type == stun.BindingSuccess {
					count++
					took = time.Since(start)
				}
			}
		}()
		for range n {
			m := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
			if _, err := pc.WriteTo(m.Raw, net.UDPAddrFromAddrPort(to)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Microsecond) // the kernel's socket buffers keep up
		}
		<-done
		return count, took
	}
	alt, took := answered(s.Addrs().STUNAlt)
	if most := STUNAltBurst + int(STUNAltRate*took.Seconds()) + 1; alt < STUNAltBurst/2 || alt > most {
		t.Fatalf("the alternate port answered %d of %d requests in %s, want %d to %d", alt, n, took, STUNAltBurst/2, most)
	}
	if udp, _ := answered(s.Addrs().UDP); udp < n*9/10 {
		t.Fatalf("the UDP port answered %d of %d requests", udp, n)
	}
}
