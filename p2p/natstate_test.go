package p2p

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

func TestNATStateFollowsEvents(t *testing.T) {
	n, err := New(Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if s := n.NATState(); s.Reachability != network.ReachabilityUnknown || len(s.Addrs) == 0 || len(s.Relayed()) != 0 {
		t.Fatalf("fresh state %+v", s)
	}
	got := make(chan NATState, 64)
	n.OnNATChange(func(s NATState) {
		select {
		case got <- s:
		default:
		}
	})
	em, err := n.Host.EventBus().Emitter(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	if err := em.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPrivate}); err != nil {
		t.Fatal(err)
	}
	// Address updates are reported too; wait for the reachability one.
	timeout := time.After(5 * time.Second)
	for done := false; !done; {
		select {
		case s := <-got:
			if s.Reachability == network.ReachabilityPrivate {
				if s.Since.IsZero() {
					t.Fatalf("after the event: %+v", s)
				}
				done = true
			}
		case <-timeout:
			t.Fatal("no reachability change reported")
		}
	}
	if r := n.NATState().Reachability; ReachabilityName(r) != "private" {
		t.Fatalf("NATState().Reachability = %v", r)
	}
}

func TestNATStateAddrSplit(t *testing.T) {
	circuit := ma.StringCast("/ip4/198.51.100.7/tcp/4001/p2p/12D3KooWGRUVh8YCv7aJXsVugEhMRPrZN9JLjKWrmDs6JNWsaSvH/p2p-circuit")
	direct := ma.StringCast("/ip4/198.51.100.1/tcp/4001")
	s := NATState{Addrs: []ma.Multiaddr{direct, circuit}}
	if r := s.Relayed(); len(r) != 1 || !r[0].Equal(circuit) {
		t.Errorf("Relayed = %v", r)
	}
	if d := s.Direct(); len(d) != 1 || !d[0].Equal(direct) {
		t.Errorf("Direct = %v", d)
	}
	if NATTypeName(network.NATDeviceTypeEndpointDependent) != "endpoint-dependent" || ReachabilityName(network.ReachabilityPublic) != "public" {
		t.Error("names")
	}
}
