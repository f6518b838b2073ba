package node

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/nat/portmap"
)

// TestConsumerPortMapNoRouter: where no router answers, a connect waits
// for it once, announces nothing (sessions gather ordinary host
// candidates), and later connects do not wait again; the mapping attempt
// lives while a connection holds it and ends with the last release.
func TestConsumerPortMapNoRouter(t *testing.T) {
	mux, err := ice.ListenMux(netip.MustParseAddrPort("127.0.0.1:0"), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing answers NAT-PMP on loopback.
	client := portmap.New(portmap.Config{Gateway: netip.MustParseAddr("127.0.0.1"), Methods: []string{portmap.MethodNATPMP}, Logger: slog.New(slog.DiscardHandler)})
	c := &consumerPortMap{client: client, mux: mux, wait: 200 * time.Millisecond, log: slog.New(slog.DiscardHandler)}
	defer c.close()
	r1 := c.acquire(t.Context())
	if !c.noAnswer {
		t.Fatal("no router answered, but the next connect would wait again")
	}
	if ext := mux.External(); ext.IsValid() {
		t.Fatalf("announces %v without a mapping", ext)
	}
	if _, ok := c.mapped(); ok {
		t.Fatal("mapped without a router")
	}
	attempt := c.maps
	r2 := c.acquire(t.Context())
	if c.maps != attempt {
		t.Fatal("a second connection restarted the mapping attempt")
	}
	r1()
	r1() // idempotent
	if c.maps == nil {
		t.Fatal("the first release ended the mapping another connection holds")
	}
	r2()
	if c.maps != nil {
		t.Fatal("the last release left the mapping attempt running")
	}
}
