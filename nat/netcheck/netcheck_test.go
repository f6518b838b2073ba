package netcheck

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/openmyst/openmyst/internal/servetest"
)

// stunServer answers Binding requests on loopback with the source address,
// or with report(source) when set (a NAT's view); closed with the test.
func stunServer(t *testing.T, report func(netip.AddrPort) netip.AddrPort) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveSTUN(t, pc, report)
	return pc.LocalAddr().String()
}

// serveSTUN answers Binding requests on pc until the test ends.
func serveSTUN(t *testing.T, pc net.PacketConn, report func(netip.AddrPort) netip.AddrPort) {
	servetest.UDP(t, pc, func(data []byte, from net.Addr) []byte {
		var m stun.Message
		m.Raw = append([]byte(nil), data...)
		if m.Decode() != nil || m.Type != stun.BindingRequest {
			return nil
		}
		src := from.(*net.UDPAddr).AddrPort()
		if report != nil {
			src = report(src)
		}
		resp, err := stun.Build(&m, stun.BindingSuccess, &stun.XORMappedAddress{IP: src.Addr().AsSlice(), Port: int(src.Port())}, stun.Fingerprint)
		if err != nil {
			return nil
		}
		return resp.Raw
	})
}

var public = netip.MustParseAddr("198.51.100.9")

func check(t *testing.T, servers ...string) Result {
	t.Helper()
	r, err := Check(context.Background(), Config{Servers: servers, AllowPrivate: true, Timeout: time.Second, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBehaviours(t *testing.T) {
	honest := func() string { return stunServer(t, nil) }
	fixed := func() string {
		return stunServer(t, func(netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(public, 40000) })
	}
	perServer := func(port uint16) string {
		return stunServer(t, func(netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(public, port) })
	}
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for _, c := range []struct {
		name    string
		servers []string
		want    string
	}{
		{"no NAT", []string{honest(), honest()}, None},
		{"endpoint-independent", []string{fixed(), fixed()}, EndpointIndependent},
		{"endpoint-dependent", []string{perServer(40000), perServer(40001)}, EndpointDependent},
		{"one server", []string{fixed()}, Unknown},
		{"udp blocked", []string{silent.LocalAddr().String()}, UDPBlocked},
		{"one of two answers", []string{fixed(), silent.LocalAddr().String()}, Unknown},
	} {
		r := check(t, c.servers...)
		if r.Behavior != c.want {
			t.Errorf("%s: behaviour %s, want %s (%+v)", c.name, r.Behavior, c.want, r.Answers)
		}
		if c.want != UDPBlocked && !r.Public.IsValid() {
			t.Errorf("%s: no public address", c.name)
		}
	}
}

func TestRefusesPrivateServersOutsideDevnets(t *testing.T) {
	s := stunServer(t, nil)
	if _, err := Check(context.Background(), Config{Servers: []string{s}, Timeout: time.Second}); err == nil {
		t.Fatal("loopback server asked without AllowPrivate")
	}
	if _, err := Check(context.Background(), Config{}); err == nil {
		t.Fatal("check without servers succeeded")
	}
}

func TestServersFromURLs(t *testing.T) {
	got := ServersFromURLs([]string{"stun:198.51.100.7:3478", "turn:198.51.100.7:3478?transport=udp", "turn:198.51.100.8:3478?transport=tcp",
		"turns:198.51.100.7:5349", "stun:198.51.100.9", "bogus"})
	want := []string{"198.51.100.7:3478", "198.51.100.9:3478"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// FuzzMatch feeds arbitrary datagrams from a server's address to the
// answer decoder: it must not panic, and accepts only a Binding success
// for the server's own transaction with a usable mapped address.
func FuzzMatch(f *testing.F) {
	server := netip.MustParseAddrPort("198.51.100.7:3478")
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest)
	if err != nil {
		f.Fatal(err)
	}
	ok, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.ParseIP("203.0.113.5"), Port: 40000}, stun.Fingerprint)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ok.Raw)
	f.Add(req.Raw)
	f.Add([]byte{0, 1, 0, 0})
	from := net.UDPAddrFromAddrPort(server)
	f.Fuzz(func(t *testing.T, b []byte) {
		i, mapped, good := match(b, from, []netip.AddrPort{server}, []stun.Message{*req})
		if !good {
			return
		}
		if i != 0 || !mapped.IsValid() || mapped.Port() == 0 {
			t.Fatalf("accepted %d %v", i, mapped)
		}
		var m stun.Message
		m.Raw = append([]byte(nil), b...)
		if m.Decode() != nil || m.Type != stun.BindingSuccess || m.TransactionID != req.TransactionID {
			t.Fatal("accepted something other than the transaction's Binding success")
		}
	})
}
