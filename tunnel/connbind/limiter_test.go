package connbind_test

import (
	"net/netip"
	"testing"

	"golang.zx2c4.com/wireguard/ratelimiter"

	"github.com/openmyst/openmyst/tunnel/connbind"
)

// TestHandshakeLimiterPerConnection: wireguard-go rate-limits handshake
// messages (under load) by the endpoint's DstIP. Each connection has an
// address of its own (stable, in the discard-only 100::/64), so a peer
// flooding handshakes over its connection exhausts its own bucket and
// not another peer's.
func TestHandshakeLimiterPerConnection(t *testing.T) {
	b := connbind.New(nil)
	defer b.Shutdown()
	ea, err := b.ParseEndpoint(connbind.EndpointOf("flood"))
	if err != nil {
		t.Fatal(err)
	}
	eb, err := b.ParseEndpoint(connbind.EndpointOf("honest"))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := b.ParseEndpoint(connbind.EndpointOf("flood"))
	discard := netip.MustParsePrefix("100::/64")
	if !ea.DstIP().IsValid() || ea.DstIP() == eb.DstIP() || ea.DstIP() != again.DstIP() ||
		!discard.Contains(ea.DstIP()) || !discard.Contains(eb.DstIP()) {
		t.Fatalf("connection addresses %v, %v (again %v): want distinct, stable addresses in %v", ea.DstIP(), eb.DstIP(), again.DstIP(), discard)
	}

	var rl ratelimiter.Ratelimiter
	rl.Init()
	defer rl.Close()
	refused := 0
	for i := 0; i < 100; i++ {
		if !rl.Allow(ea.DstIP()) {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("the limiter refused none of 100 handshakes in a burst")
	}
	if !rl.Allow(eb.DstIP()) {
		t.Fatal("one connection's handshake flood used up another connection's handshakes")
	}
}
