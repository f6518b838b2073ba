package kernel

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/tunnel"
)

// TestExitAttachConn admits a consumer on a kernel exit without a
// connection, as a provider does before ICE has selected a path, then
// attaches one (a socket of its own on another port, standing in for the
// ICE connection): the consumer's kernel client, whose endpoint is that
// socket and not the exit's WireGuard port, brings the tunnel up and
// fetches through the exit.
func TestExitAttachConn(t *testing.T) {
	tp := newTopology(t)
	serveHTTP(t, tp.internet, ":8080", "internet")
	exit, exitKey, ours, lease := startAttachExit(t, tp)
	other := mustKey(t)
	if r := exit.call("attach " + other.PublicKey().String() + " " + providerUplink + ":40001"); !strings.HasPrefix(r, "ERR") {
		t.Fatalf("attach to an unknown peer: %q, want an error", r)
	}
	if r := exit.call("attach " + ours.PublicKey().String() + " " + providerUplink + ":40000"); r != "OK" {
		t.Fatalf("attach: %q", r)
	}
	wq := clientWGQuick(t, ours, exitKey, lease, netip.MustParseAddrPort(providerUplink+":40000"))
	startHelper(t, tp.consumer, "client", clientSpec{WGQuick: string(wq)})
	body, err := fetch(tp.consumer, "http://"+internetAddr+":8080/", "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if body != "internet saw "+providerOut {
		t.Fatalf("body %q: traffic did not leave through the exit", body)
	}
	if st := peerStats(t, exit, ours.PublicKey()); st.LastHandshake.IsZero() || st.RxBytes == 0 {
		t.Fatalf("exit peer stats %+v: nothing over the attached connection", st)
	}
}

// TestClientOverConn: a kernel client whose provider peer is carried over
// a connection of its own (ClientConfig.Conn, as over ICE) to a port that
// is not the exit's WireGuard port: the kill switch admits exactly that
// path and not the endpoint, its address leaves the tunnel's routing
// table (else the datagrams would loop into the tunnel), and the client
// fetches through the exit.
func TestClientOverConn(t *testing.T) {
	tp := newTopology(t)
	serveHTTP(t, tp.internet, ":8080", "internet")
	exit, exitKey, ours, lease := startAttachExit(t, tp)
	// On the provider's far address, reached through the consumer's
	// default route (as a provider on the internet is): only a throw
	// route keeps the datagrams out of the tunnel.
	path := netip.MustParseAddrPort(providerOut + ":40000")
	if r := exit.call("attach " + ours.PublicKey().String() + " " + path.String()); r != "OK" {
		t.Fatalf("attach: %q", r)
	}
	wq := clientWGQuick(t, ours, exitKey, lease, netip.MustParseAddrPort(providerUplink+":51820"))
	startHelper(t, tp.consumer, "client", clientSpec{WGQuick: string(wq), Conn: path})
	ks := tp.consumer.MustRun("nft", "list", "table", "inet", DefaultKillSwitchTable)
	if !strings.Contains(ks, "ip daddr "+providerOut+" udp dport 40000 accept") || strings.Contains(ks, "51820") {
		t.Fatalf("kill switch over a connection: want the path admitted, not the endpoint:\n%s", ks)
	}
	if routes := tp.consumer.MustRun("ip", "route", "show", "table", "all"); !strings.Contains(routes, "throw "+providerOut) {
		t.Fatalf("no throw route for the path's address:\n%s", routes)
	}
	body, err := fetch(tp.consumer, "http://"+internetAddr+":8080/", "", 5*time.Second)
	if err != nil || body != "internet saw "+providerOut {
		t.Fatalf("fetch over the connection: %q, %v", body, err)
	}
	if st := peerStats(t, exit, ours.PublicKey()); st.LastHandshake.IsZero() || st.RxBytes == 0 {
		t.Fatalf("exit peer stats %+v: nothing over the connection", st)
	}
}

// startAttachExit starts a kernel exit in the provider namespace on port
// 51820 with one admitted consumer key, ours, holding lease, and no
// connection attached yet.
func startAttachExit(t *testing.T, tp *topology) (exit *helper, exitKey, ours tunnel.PrivateKey, lease tunnel.Lease) {
	t.Helper()
	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	if err != nil {
		t.Fatal(err)
	}
	exitKey, ours = mustKey(t), mustKey(t)
	lease, _ = pool.Allocate()
	exit, _ = startHelper(t, tp.provider, "exit", exitSpec{
		PrivateKey: exitKey.String(), ListenPort: 51820, DNS: []netip.Addr{netip.MustParseAddr(internetAddr)},
		Peers: []tunnel.PeerConfig{{PublicKey: ours.PublicKey(), AllowedIPs: lease.Prefixes()}},
	})
	return exit, exitKey, ours, lease
}

// clientWGQuick is the wg-quick config of the consumer key ours (holding
// lease) for the exit exitKey at endpoint: the whole tunnel, with
// keepalives.
func clientWGQuick(t *testing.T, ours, exitKey tunnel.PrivateKey, lease tunnel.Lease, endpoint netip.AddrPort) []byte {
	t.Helper()
	wq, err := tunnel.SessionConfig{
		PrivateKey: ours, Addresses: lease.Prefixes(), PeerPublicKey: exitKey.PublicKey(),
		Endpoint:   endpoint,
		AllowedIPs: tunnel.FullTunnel(), PersistentKeepalive: tunnel.DefaultKeepalive,
	}.WGQuick()
	if err != nil {
		t.Fatal(err)
	}
	return wq
}
