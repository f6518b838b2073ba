// Package tunnel holds the core of the openmyst data plane that both exit
// modes share: WireGuard keys in WireGuard's base64 format, the exit policy
// that keeps consumers away from the provider's own networks, the per-session
// tunnel address pool, peer and session configuration, wg-quick export and
// parsing, byte/handshake accounting read from wireguard-go's UAPI, and the
// small interfaces the session layer talks to (Exit on the provider side,
// Client on the consumer side).
//
// The modes themselves live below this package: tunnel/userspace (gVisor
// netstack, no privileges) and tunnel/kernel (TUN, routes, firewall). The
// consumer's SOCKS5 and HTTP CONNECT proxies live in tunnel/proxy.
//
// # What is counted
//
// PeerStats.RxBytes and TxBytes are wireguard-go's per-peer rx_bytes and
// tx_bytes: the size of every WireGuard message received from or sent to
// the peer (transport data including its 16-byte header, 16-byte
// authentication tag and padding to a multiple of 16, plus handshake and
// keepalive messages), excluding the outer UDP/IP headers. Both ends of a
// tunnel count the same messages, so a consumer's TxBytes equals the
// provider's RxBytes for that peer up to packets lost in flight; this is the
// byte count the session layer bills.
package tunnel
