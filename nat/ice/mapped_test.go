package ice

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/openmyst/openmyst/relay"
)

// TestMappedAddress: a binding request to the relay role's STUN server
// (real pion/turn) returns the address the server saw it from.
func TestMappedAddress(t *testing.T) {
	s, err := relay.Start(relay.Config{
		UDP: "127.0.0.1:0", PublicIP: netip.MustParseAddr("127.0.0.1"), RelayBind: netip.MustParseAddr("127.0.0.1"),
		Secret: []byte("0123456789abcdef0123456789abcdef"), AllowPrivatePeers: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := net.Dial("udp4", s.Addrs().UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := MappedAddress(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort(conn.LocalAddr().String()); got != want {
		t.Errorf("mapped address %v, want the socket's %v", got, want)
	}
}

// TestMappedAddressBounded: a server that never answers costs
// MappedAttempts requests and ends within the deadline with an error.
func TestMappedAddressBounded(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	conn, err := net.Dial("udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	if _, err := MappedAddress(ctx, conn); err == nil {
		t.Fatal("no error from a silent server")
	}
	_ = pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	n := 0
	buf := make([]byte, 1500)
	for {
		if _, _, err := pc.ReadFrom(buf); err != nil {
			break
		}
		n++
	}
	if n < 1 || n > MappedAttempts {
		t.Errorf("%d requests sent, want 1..%d", n, MappedAttempts)
	}
}

func TestParseBindingResponse(t *testing.T) {
	var tid [stun.TransactionIDSize]byte
	copy(tid[:], "0123456789ab")
	want := netip.MustParseAddrPort("198.51.100.7:4242")
	ok := stun.MustBuild(stun.NewTransactionIDSetter(tid), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: want.Addr().AsSlice(), Port: int(want.Port())}, stun.Fingerprint)
	got, err := ParseBindingResponse(ok.Raw, tid)
	if err != nil || got != want {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	other := tid
	other[0]++
	for name, tc := range map[string]struct {
		raw  []byte
		tid  [stun.TransactionIDSize]byte
		want string
	}{
		"garbage":          {[]byte("hello"), tid, "not a STUN"},
		"other":            {ok.Raw, other, "another transaction"},
		"error response":   {stun.MustBuild(stun.NewTransactionIDSetter(tid), stun.BindingError).Raw, tid, "instead of"},
		"no mapped":        {stun.MustBuild(stun.NewTransactionIDSetter(tid), stun.BindingSuccess).Raw, tid, "XOR-MAPPED"},
		"bad fingerprint":  {flipLast(ok.Raw), tid, "fingerprint"},
		"truncated header": {ok.Raw[:10], tid, "STUN"},
	} {
		if _, err := ParseBindingResponse(tc.raw, tc.tid); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", name, err, tc.want)
		}
	}
}

func flipLast(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[len(c)-1] ^= 0xff
	return c
}

// FuzzParseBindingResponse: no input panics, and an accepted one has a
// valid address.
func FuzzParseBindingResponse(f *testing.F) {
	var tid [stun.TransactionIDSize]byte
	copy(tid[:], "0123456789ab")
	f.Add(stun.MustBuild(stun.NewTransactionIDSetter(tid), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.ParseIP("2001:db8::1"), Port: 1}, stun.Fingerprint).Raw)
	f.Add(stun.MustBuild(stun.NewTransactionIDSetter(tid), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.ParseIP("192.0.2.1"), Port: 3478}).Raw)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		ap, err := ParseBindingResponse(raw, tid)
		if err == nil && (!ap.IsValid() || ap.Port() == 0) {
			t.Fatalf("accepted %v", ap)
		}
	})
}

func TestSTUNTargets(t *testing.T) {
	got := STUNTargets([]Server{{URL: "stun:127.0.0.1:3478"}, {URL: "turn:127.0.0.1:3478?transport=udp"}, {URL: "stun:stun.example.org:19302"}, {URL: "stun:[2001:db8::1]:3478"}})
	want := []string{"127.0.0.1:3478", "stun.example.org:19302", "[2001:db8::1]:3478"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("targets %v, want %v", got, want)
	}
}
