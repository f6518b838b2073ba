package punch

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var (
	testKey  = DeriveKey("cUfrag", "controlling-password-0123", "pUfrag", "controlled-password-01234")
	otherKey = DeriveKey("cUfrag", "controlling-password-0123", "pUfrag", "controlled-password-01235")
)

func TestDeriveKey(t *testing.T) {
	if testKey == otherKey {
		t.Fatal("different credentials gave the same key")
	}
	// Length-prefixed: moving a character from one field to the next
	// changes the key.
	if DeriveKey("ab", "c", "d", "e") == DeriveKey("a", "bc", "d", "e") {
		t.Fatal("field boundaries do not count")
	}
	// The roles are not interchangeable.
	if DeriveKey("a", "b", "c", "d") == DeriveKey("c", "d", "a", "b") {
		t.Fatal("swapped roles gave the same key")
	}
}

// TestPacketAuth: a packet decodes only under its key, from the other
// role, unmodified and whole.
func TestPacketAuth(t *testing.T) {
	p := packet{kind: kindPing, role: roleControlling, txid: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
	b := p.encode(testKey)
	if len(b) != PacketSize || !isPunch(b) {
		t.Fatalf("encoded %x", b)
	}
	got, err := decode(b, testKey, roleControlling)
	if err != nil || got != p {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if _, err := decode(b, otherKey, roleControlling); !errors.Is(err, ErrBadAuth) {
		t.Errorf("other key: %v, want ErrBadAuth", err)
	}
	// Reflected back to its sender, whose peer has the other role.
	if _, err := decode(b, testKey, roleControlled); !errors.Is(err, ErrBadAuth) {
		t.Errorf("reflected: %v, want ErrBadAuth", err)
	}
	for i := range b {
		m := bytes.Clone(b)
		m[i] ^= 0x40
		if _, err := decode(m, testKey, roleControlling); err == nil {
			t.Errorf("byte %d flipped: accepted", i)
		}
	}
	for _, n := range []int{0, 3, 4, PacketSize - 1} {
		if _, err := decode(b[:n], testKey, roleControlling); !errors.Is(err, ErrNotPunch) {
			t.Errorf("%d bytes: %v, want ErrNotPunch", n, err)
		}
	}
	if _, err := decode(append(bytes.Clone(b), 0), testKey, roleControlling); !errors.Is(err, ErrNotPunch) {
		t.Errorf("trailing byte: %v, want ErrNotPunch", err)
	}
	// A WireGuard handshake initiation (type 1) or a STUN message is not
	// taken for a punch packet.
	if isPunch([]byte{1, 0, 0, 0, 9, 9}) || isPunch([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42}) {
		t.Error("WireGuard or STUN taken for punch")
	}
	// A kind outside the known ones, even correctly tagged.
	bad := packet{kind: 9, role: roleControlling}.encode(testKey)
	if _, err := decode(bad, testKey, roleControlling); !errors.Is(err, ErrNotPunch) {
		t.Errorf("unknown kind: %v, want ErrNotPunch", err)
	}
}

// TestTxidBindsAddress: a ping's transaction id depends on the socket,
// the destination, the role and nomination, so a pong replayed onto
// another socket or from another address does not confirm anything.
func TestTxidBindsAddress(t *testing.T) {
	a := netip.MustParseAddrPort("25.0.0.9:4000")
	base := txid(testKey, roleControlling, false, 5000, a)
	for name, other := range map[string][8]byte{
		"port":   txid(testKey, roleControlling, false, 5001, a),
		"dest":   txid(testKey, roleControlling, false, 5000, netip.MustParseAddrPort("25.0.0.9:4001")),
		"ip":     txid(testKey, roleControlling, false, 5000, netip.MustParseAddrPort("25.0.0.8:4000")),
		"role":   txid(testKey, roleControlled, false, 5000, a),
		"use":    txid(testKey, roleControlling, true, 5000, a),
		"key":    txid(otherKey, roleControlling, false, 5000, a),
		"mapped": txid(testKey, roleControlling, false, 5000, netip.MustParseAddrPort("[::ffff:25.0.0.9]:4000")),
	} {
		if (other == base) != (name == "mapped") {
			t.Errorf("%s: same txid %v", name, other == base)
		}
	}
}

func TestInfoValidate(t *testing.T) {
	public := func(a netip.Addr) bool { return a.IsGlobalUnicast() && !a.IsPrivate() }
	if ap, err := (Info{Mapping: Easy, Addr: "25.0.0.9:4000"}).Validate(public); err != nil || ap.String() != "25.0.0.9:4000" {
		t.Fatalf("good info: %v %v", ap, err)
	}
	for name, i := range map[string]Info{
		"mapping":    {Mapping: "cone", Addr: "25.0.0.9:4000"},
		"empty":      {},
		"no port":    {Mapping: Easy, Addr: "25.0.0.9"},
		"port 0":     {Mapping: Easy, Addr: "25.0.0.9:0"},
		"ipv6":       {Mapping: Hard, Addr: "[2001:db8::1]:4000"},
		"private":    {Mapping: Hard, Addr: "192.168.1.2:4000"},
		"long":       {Mapping: Hard, Addr: strings.Repeat("1", 40)},
		"hostname":   {Mapping: Hard, Addr: "relay.example:4000"},
		"v4-in-v6":   {Mapping: Hard, Addr: "[::ffff:25.0.0.9]:4000"},
		"trailing":   {Mapping: Easy, Addr: "25.0.0.9:4000 "},
		"big port":   {Mapping: Easy, Addr: "25.0.0.9:65536"},
		"nil policy": {Mapping: Easy, Addr: "25.0.0.9:4000"},
	} {
		allowed := public
		if name == "nil policy" {
			allowed = nil
		}
		if _, err := i.Validate(allowed); !errors.Is(err, ErrBadInfo) {
			t.Errorf("%s: %v, want ErrBadInfo", name, err)
		}
	}
	if !Applies(Hard, Easy) || !Applies(Easy, Hard) || Applies(Hard, Hard) || Applies(Easy, Easy) || Applies("", Easy) {
		t.Error("Applies")
	}
}

// FuzzDecode: no input panics; an accepted packet is exactly the
// encoding of what it decoded to.
func FuzzDecode(f *testing.F) {
	f.Add(packet{kind: kindPing, role: roleControlling, txid: [8]byte{1}}.encode(testKey))
	f.Add(packet{kind: kindPong, role: roleControlling}.encode(testKey))
	f.Add(packet{kind: kindUse, role: roleControlled}.encode(testKey))
	f.Add([]byte{magic0, 'o', 'm', 'p'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, from := range []byte{roleControlling, roleControlled} {
			p, err := decode(in, testKey, from)
			if err != nil {
				continue
			}
			if !bytes.Equal(p.encode(testKey), in) || p.role != from {
				t.Fatalf("accepted %x, re-encodes to %x", in, p.encode(testKey))
			}
		}
	})
}
