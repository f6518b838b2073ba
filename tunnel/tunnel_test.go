package tunnel

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/device"
)

func TestKeys(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if k[0]&7 != 0 || k[31]&128 != 0 || k[31]&64 == 0 {
		t.Fatalf("key not clamped: %x", k)
	}
	k2, err := ParsePrivateKey(k.String())
	if err != nil || k2 != k {
		t.Fatalf("private round trip: %v", err)
	}
	pub := k.PublicKey()
	p2, err := ParsePublicKey(pub.String())
	if err != nil || p2 != pub {
		t.Fatalf("public round trip: %v", err)
	}
	p3, err := ParsePublicKeyHex(pub.Hex())
	if err != nil || p3 != pub {
		t.Fatalf("hex round trip: %v", err)
	}
	// RFC 7748 section 6.1 test vector (Alice).
	alice, _ := ParsePrivateKey("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=")
	if got := alice.PublicKey().Hex(); got != "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" {
		t.Fatalf("x25519 vector: %s", got)
	}
	for _, bad := range []string{"", "AAAA", strings.Repeat("A", 43) + "=", "!" + pub.String()[1:], pub.String() + "A"} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", bad)
		}
	}
	// Non-canonical base64: nonzero padding bits in the last character.
	zs := PublicKey{1}.String()
	if zs[42] != 'A' {
		t.Fatalf("unexpected encoding %s", zs)
	}
	if _, err := ParsePublicKey(zs[:42] + "B="); err == nil {
		t.Error("non-canonical base64 key accepted")
	}
}

func mustRule(t *testing.T, s string) Rule {
	t.Helper()
	r, err := ParseRule(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestExitPolicyDefaults(t *testing.T) {
	own := netip.MustParseAddr("203.0.113.7")
	p, err := NewExitPolicy(PolicyConfig{OwnAddrs: []netip.Addr{own}})
	if err != nil {
		t.Fatal(err)
	}
	blocked := []string{"127.0.0.1:80", "10.1.2.3:443", "172.20.0.1:22", "192.168.1.1:80", "100.64.0.1:80",
		"169.254.169.254:80", "224.0.0.251:5353", "255.255.255.255:67", "0.0.0.0:80", "203.0.113.7:8080",
		"[::1]:80", "[fe80::1]:80", "[fd00::1]:80", "[ff02::1]:80", "[::]:80", "[::ffff:127.0.0.1]:80", "[::ffff:10.0.0.1]:80"}
	for _, s := range blocked {
		if p.Allowed(netip.MustParseAddrPort(s), ProtoTCP) {
			t.Errorf("%s allowed", s)
		}
	}
	if got := p.Blocked(); got != uint64(len(blocked)) {
		t.Fatalf("blocked counter %d, want %d", got, len(blocked))
	}
	for _, s := range []string{"1.1.1.1:443", "203.0.113.8:80", "[2606:4700::1111]:443"} {
		if !p.Allowed(netip.MustParseAddrPort(s), ProtoTCP) {
			t.Errorf("%s blocked: %v", s, p.Check(netip.MustParseAddrPort(s), ProtoTCP))
		}
	}
	err = p.Check(netip.MustParseAddrPort("10.0.0.1:1"), ProtoUDP)
	if !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), "10.0.0.0/8") {
		t.Fatalf("reason: %v", err)
	}
	dp := p.DenyPrefixes()
	if dp[len(dp)-1] != netip.MustParsePrefix("203.0.113.7/32") {
		t.Fatalf("own address not in DenyPrefixes: %v", dp)
	}
}

func TestExitPolicyOperatorRules(t *testing.T) {
	p, err := NewExitPolicy(PolicyConfig{
		Allow: []Rule{mustRule(t, "tcp:127.0.0.1 port 8080")},
		Deny:  []Rule{mustRule(t, "tcp:0.0.0.0/0 port 25"), mustRule(t, "198.51.100.0/24")},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		dst   string
		proto Proto
		want  bool
	}{
		{"127.0.0.1:8080", ProtoTCP, true},  // allow beats default deny
		{"127.0.0.1:8080", ProtoUDP, false}, // only tcp allowed
		{"127.0.0.1:8081", ProtoTCP, false},
		{"8.8.8.8:25", ProtoTCP, false},
		{"8.8.8.8:25", ProtoUDP, true},
		{"198.51.100.9:443", ProtoUDP, false},
		{"8.8.8.8:443", ProtoTCP, true},
	}
	for _, c := range cases {
		if got := p.Allowed(netip.MustParseAddrPort(c.dst), c.proto); got != c.want {
			t.Errorf("%s %s: got %v want %v", c.proto, c.dst, got, c.want)
		}
	}
}

func TestParseRule(t *testing.T) {
	good := map[string]string{
		"10.0.0.0/8":                "10.0.0.0/8",
		"10.1.2.3/8":                "10.0.0.0/8",
		"tcp:1.2.3.4":               "tcp:1.2.3.4/32",
		"udp:2001:db8::/32 port 53": "udp:2001:db8::/32 port 53",
		"0.0.0.0/0 port 1000-2000":  "0.0.0.0/0 port 1000-2000",
		" tcp:::1 port 22 ":         "tcp:::1/128 port 22",
	}
	for in, want := range good {
		r, err := ParseRule(in)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", in, err)
			continue
		}
		if r.String() != want {
			t.Errorf("ParseRule(%q) = %q, want %q", in, r, want)
		}
		if r2, err := ParseRule(r.String()); err != nil || r2 != r {
			t.Errorf("round trip %q: %v", r, err)
		}
	}
	for _, bad := range []string{"", "x", "10.0.0.0/33", "1.2.3.4 port 0", "1.2.3.4 port 70000", "1.2.3.4 port 9-3", "icmp:1.2.3.4", "::ffff:10.0.0.0/104"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q) accepted", bad)
		}
	}
}

func TestAddressPool(t *testing.T) {
	p, err := NewAddressPool(netip.MustParsePrefix("10.9.0.0/29"), netip.MustParsePrefix("fd00:1::/64"))
	if err != nil {
		t.Fatal(err)
	}
	if gw := p.Gateway(); gw.V4 != netip.MustParseAddr("10.9.0.1") || gw.V6 != netip.MustParseAddr("fd00:1::1") {
		t.Fatalf("gateway %v", gw)
	}
	var leases []Lease
	for {
		l, err := p.Allocate()
		if errors.Is(err, ErrPoolExhausted) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	// /29: .0 network, .1 gateway, .7 broadcast -> .2 to .6
	if len(leases) != 5 || leases[0].V4 != netip.MustParseAddr("10.9.0.2") || leases[4].V4 != netip.MustParseAddr("10.9.0.6") {
		t.Fatalf("leases %v", leases)
	}
	if leases[0].V6 != netip.MustParseAddr("fd00:1::2") {
		t.Fatalf("v6 pairing %v", leases[0])
	}
	if got := leases[0].Prefixes(); len(got) != 2 || got[0].Bits() != 32 || got[1].Bits() != 128 {
		t.Fatalf("prefixes %v", got)
	}
	if err := p.Release(leases[2]); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(leases[2]); err == nil {
		t.Fatal("double release accepted")
	}
	if err := p.Release(Lease{V4: netip.MustParseAddr("10.9.0.1")}); err == nil {
		t.Fatal("gateway release accepted")
	}
	l, err := p.Allocate()
	if err != nil || l != leases[2] {
		t.Fatalf("reallocate: %v %v", l, err)
	}
	if err := p.Reserve(leases[1]); err == nil {
		t.Fatal("reserve of used lease accepted")
	}
	if p.InUse() != 5 {
		t.Fatalf("in use %d", p.InUse())
	}
	if _, err := NewAddressPool(netip.MustParsePrefix("10.0.0.0/31"), netip.Prefix{}); err == nil {
		t.Fatal("/31 accepted")
	}
}

func sampleConfig(t *testing.T) SessionConfig {
	k, _ := GenerateKey()
	pk, _ := GenerateKey()
	return SessionConfig{
		PrivateKey:          k,
		Addresses:           []netip.Prefix{netip.MustParsePrefix("10.182.0.2/32"), netip.MustParsePrefix("fd7e:6d79:7374::2/128")},
		DNS:                 []netip.Addr{netip.MustParseAddr("10.182.0.1")},
		MTU:                 1420,
		PeerPublicKey:       pk.PublicKey(),
		Endpoint:            netip.MustParseAddrPort("198.51.100.1:51820"),
		AllowedIPs:          FullTunnel(),
		PersistentKeepalive: 25 * time.Second,
	}
}

func TestWGQuickRoundTrip(t *testing.T) {
	c := sampleConfig(t)
	b, err := c.WGQuick()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[Interface]\nPrivateKey = ", "Address = 10.182.0.2/32, fd7e:6d79:7374::2/128\n", "DNS = 10.182.0.1\n",
		"[Peer]\nPublicKey = ", "Endpoint = 198.51.100.1:51820\n", "AllowedIPs = 0.0.0.0/0, ::/0\n", "PersistentKeepalive = 25\n"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("missing %q in\n%s", want, b)
		}
	}
	c2, err := ParseWGQuick(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := c2.WGQuick()
	if !bytes.Equal(b, b2) {
		t.Fatalf("round trip differs:\n%s\n---\n%s", b, b2)
	}
}

func TestParseWGQuickRejects(t *testing.T) {
	good, _ := sampleConfig(t).WGQuick()
	cases := map[string]string{
		"hook":          strings.Replace(string(good), "MTU = 1420", "PostUp = rm -rf /", 1),
		"unknown sect":  string(good) + "[Other]\n",
		"two peers":     string(good) + "[Peer]\n",
		"dup key":       strings.Replace(string(good), "MTU = 1420", "MTU = 1420\nMTU = 1400", 1),
		"hostname":      strings.Replace(string(good), "198.51.100.1:51820", "vpn.example:51820", 1),
		"no port":       strings.Replace(string(good), "198.51.100.1:51820", "198.51.100.1", 1),
		"mtu range":     strings.Replace(string(good), "MTU = 1420", "MTU = 100", 1),
		"bad key":       strings.Replace(string(good), "PublicKey = ", "PublicKey = x", 1),
		"no peer key":   regexpCut(string(good), "PublicKey = "),
		"no equals":     strings.Replace(string(good), "MTU = 1420", "MTU", 1),
		"outside":       "PrivateKey = x\n" + string(good),
		"bad dns":       strings.Replace(string(good), "DNS = 10.182.0.1", "DNS = example.com", 1),
		"keepalive big": strings.Replace(string(good), "PersistentKeepalive = 25", "PersistentKeepalive = 70000", 1),
		"empty":         "",
	}
	for name, in := range cases {
		if _, err := ParseWGQuick([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func regexpCut(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func FuzzParseWGQuick(f *testing.F) {
	k, _ := GenerateKey()
	c := SessionConfig{PrivateKey: k, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")},
		PeerPublicKey: k.PublicKey(), Endpoint: netip.MustParseAddrPort("1.2.3.4:5"), AllowedIPs: FullTunnel()}
	good, _ := c.WGQuick()
	f.Add(good)
	f.Add([]byte("[Interface]\n[Peer]\n"))
	f.Add([]byte("[interface]\nprivatekey=" + k.String() + "\naddress=10.0.0.2\n[peer]\npublickey=" + k.PublicKey().String() + "\nendpoint=[::1]:1\nallowedips=::/0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseWGQuick(data)
		if err != nil {
			return
		}
		out, err := c.WGQuick()
		if err != nil {
			t.Fatalf("parsed config does not render: %v", err)
		}
		c2, err := ParseWGQuick(out)
		if err != nil {
			t.Fatalf("rendered config does not parse: %v\n%s", err, out)
		}
		out2, _ := c2.WGQuick()
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

func TestParseUAPIStats(t *testing.T) {
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	get := "private_key=" + k1.Hex() + "\nlisten_port=51820\n" +
		"public_key=" + k1.PublicKey().Hex() + "\nendpoint=127.0.0.1:1\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\nrx_bytes=100\ntx_bytes=200\nallowed_ip=10.0.0.2/32\n" +
		"public_key=" + k2.PublicKey().Hex() + "\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\nrx_bytes=0\ntx_bytes=0\nprotocol_version=1\nerrno=0\n"
	m, err := ParseUAPIStats(get)
	if err != nil {
		t.Fatal(err)
	}
	s1 := m[k1.PublicKey()]
	if s1.RxBytes != 100 || s1.TxBytes != 200 || !s1.LastHandshake.Equal(time.Unix(1700000000, 5)) {
		t.Fatalf("peer1 %+v", s1)
	}
	if s2, ok := m[k2.PublicKey()]; !ok || !s2.LastHandshake.IsZero() {
		t.Fatalf("peer2 %+v %v", s2, ok)
	}
	for _, bad := range []string{"rx_bytes=1\n", "public_key=zz\n", "public_key=" + k1.PublicKey().Hex() + "\nrx_bytes=-1\n", "junk\n", "errno=1\n",
		"public_key=" + k1.PublicKey().Hex() + "\npublic_key=" + k1.PublicKey().Hex() + "\n"} {
		if _, err := ParseUAPIStats(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseUAPIStats(f *testing.F) {
	f.Add("public_key=" + strings.Repeat("ab", 32) + "\nrx_bytes=1\ntx_bytes=2\nlast_handshake_time_sec=3\n")
	f.Add("errno=0\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseUAPIStats(s)
		if err == nil && m == nil {
			t.Fatal("nil map without error")
		}
	})
}

type fakeCounter struct{ after time.Time }

func (f fakeCounter) PeerStats(PublicKey) (PeerStats, bool) {
	if time.Now().After(f.after) {
		return PeerStats{LastHandshake: time.Now()}, true
	}
	return PeerStats{}, true
}

func TestWaitHandshake(t *testing.T) {
	ctx := context.Background()
	if err := WaitHandshake(ctx, fakeCounter{after: time.Now().Add(30 * time.Millisecond)}, PublicKey{1}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	err := WaitHandshake(ctx, fakeCounter{after: time.Now().Add(time.Hour)}, PublicKey{1}, 50*time.Millisecond)
	if !errors.Is(err, ErrHandshakeTimeout) {
		t.Fatalf("want ErrHandshakeTimeout, got %v", err)
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "tcp:1.2.3.4 port 80", "udp:2001:db8::/32 port 1000-2000", "::1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		r2, err := ParseRule(r.String())
		if err != nil || r2 != r {
			t.Fatalf("%q -> %q -> %v (%v)", s, r, r2, err)
		}
	})
}

func TestPeerStatsAlive(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	if (PeerStats{}).Alive(now) {
		t.Error("never-handshaken peer is alive")
	}
	if !(PeerStats{LastHandshake: now.Add(-2 * time.Minute)}).Alive(now) {
		t.Error("peer with a 2-minute-old handshake is dead")
	}
	if (PeerStats{LastHandshake: now.Add(-RejectAfter)}).Alive(now) {
		t.Error("peer past Reject-After-Time is alive")
	}
}

// TestDefaultHandshakeTimeoutOutlastsResends: WireGuard resends a lost
// handshake initiation only after REKEY_TIMEOUT plus jitter. A default
// wait no longer than that (it was exactly 5 s) fails a session on one
// lost packet; it must cover the third initiation.
func TestDefaultHandshakeTimeoutOutlastsResends(t *testing.T) {
	resend := device.RekeyTimeout + device.RekeyTimeoutJitterMaxMs*time.Millisecond
	if DefaultHandshakeTimeout <= 2*resend {
		t.Fatalf("DefaultHandshakeTimeout %v: the third initiation goes out up to %v after the first", DefaultHandshakeTimeout, 2*resend)
	}
}
