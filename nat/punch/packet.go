// Package punch opens a direct UDP path between a node behind an
// endpoint-dependent ("symmetric", hard) NAT and one behind an
// endpoint-independent ("easy") NAT that filters by address and port, the
// pair ICE cannot punch: the hard side's packets leave from a port the
// easy side's router never sent to. It is the birthday-paradox technique
// Tailscale describes for hard ↔ easy NATs:
//
//   - the hard side opens many sockets (Config.Sockets, 256) and sends an
//     authenticated ping from each to the easy side's public address; each
//     gets its own random public port on the hard side's router;
//   - the easy side sends authenticated pings from its one socket to random
//     ports of the hard side's public address (at most Config.Probes,
//     paced at Config.Rate), which opens its own router for replies from
//     each port it tried;
//   - when a probe lands on one of the hard side's mappings, the pair
//     works both ways: a ping is answered with a pong, the controlling
//     side nominates the pair (a "use" ping, answered with a pong), both
//     keep that one socket and close the rest.
//
// With 256 mappings out of the 64,512 ports a fully random NAT picks
// from, each probe hits with p ≈ 1/252: 1,024 probes find a pair 98.3% of
// the time, 2,048 probes 99.97%.
//
// Every packet carries an HMAC-SHA256 tag under a key both sides derive
// from the session's ICE credentials (exchanged over the signed session
// stream; DeriveKey), and names its sender's role, so a stranger can
// neither forge a ping nor reflect one back; a pong must echo the
// transaction id of a ping this side sent on that socket to that very
// address. Pings are sent only to the peer's validated public address
// (never loopback, private outside devnets, link-local or metadata:
// nat/addrs), and a side accepts packets only from the peer's public
// address. Punching is bounded (sockets, probes), paced (Rate) and
// time-limited (Timeout); the caller falls back to ICE's result (a TURN
// relay) when it fails.
//
// The punched socket pair becomes a Conn: a net.Conn for WireGuard's
// datagrams (tunnel/connbind) that answers the peer's keepalive pings and
// reports a path that went silent (Lost).
package punch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Key authenticates one session's punch packets (see DeriveKey).
type Key [32]byte

// DeriveKey derives the session's punch key from both sides' ICE
// credentials: the controlling side's (the consumer's) ufrag and
// password, then the controlled side's. Both travel only over the signed,
// encrypted session stream, so only the two sides know the key.
func DeriveKey(controllingUfrag, controllingPwd, controlledUfrag, controlledPwd string) Key {
	h := hmac.New(sha256.New, []byte("openmyst/punch/v1"))
	for _, s := range []string{controllingUfrag, controllingPwd, controlledUfrag, controlledPwd} {
		var n [2]byte
		binary.BigEndian.PutUint16(n[:], uint16(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var k Key
	copy(k[:], h.Sum(nil))
	return k
}

// Packet layout: magic (4) | kind (1) | sender role (1) | transaction id
// (8) | tag (16). The first byte (0xfe) is neither a WireGuard message
// type (1–4) nor a STUN message (0x00–0x3f), so punch packets and
// WireGuard datagrams share the punched socket.
const (
	// PacketSize is the size of every punch packet.
	PacketSize = 30
	magic0     = 0xfe
	headerSize = 14
	tagSize    = 16
)

var magic = [4]byte{magic0, 'o', 'm', 'p'}

// Packet kinds.
const (
	kindPing = 1 // answer with a pong
	kindUse  = 2 // a ping from the controlling side that nominates the pair
	kindPong = 3 // echoes the ping's transaction id
)

// Roles: who sent a packet. A side accepts only packets of the other
// role, so its own packets reflected back are refused.
const (
	roleControlling = 0
	roleControlled  = 1
)

// Errors of Decode.
var (
	ErrNotPunch = errors.New("punch: not a punch packet")
	ErrBadAuth  = errors.New("punch: packet fails authentication")
)

// packet is a decoded punch packet.
type packet struct {
	kind byte
	role byte
	txid [8]byte
}

// encode returns the packet authenticated under k.
func (p packet) encode(k Key) []byte {
	b := make([]byte, PacketSize)
	copy(b, magic[:])
	b[4], b[5] = p.kind, p.role
	copy(b[6:14], p.txid[:])
	copy(b[headerSize:], tag(k, b[:headerSize]))
	return b
}

func tag(k Key, header []byte) []byte {
	h := hmac.New(sha256.New, k[:])
	h.Write(header)
	return h.Sum(nil)[:tagSize]
}

// isPunch reports whether b looks like a punch packet (its magic), so a
// Conn can tell them from WireGuard datagrams before authenticating.
func isPunch(b []byte) bool { return len(b) >= 4 && [4]byte(b[:4]) == magic }

// decode validates b as a punch packet sent by the side with role from
// (the peer's role), authenticated under k: exact size, magic, a known
// kind, the expected sender role and a correct tag.
func decode(b []byte, k Key, from byte) (packet, error) {
	if len(b) != PacketSize || !isPunch(b) {
		return packet{}, ErrNotPunch
	}
	p := packet{kind: b[4], role: b[5]}
	if p.kind < kindPing || p.kind > kindPong {
		return packet{}, fmt.Errorf("%w: kind %d", ErrNotPunch, p.kind)
	}
	if p.role != from {
		return packet{}, fmt.Errorf("%w: sent by role %d, want %d", ErrBadAuth, p.role, from)
	}
	if !hmac.Equal(b[headerSize:], tag(k, b[:headerSize])) {
		return packet{}, ErrBadAuth
	}
	copy(p.txid[:], b[6:14])
	return p, nil
}

// txid is the transaction id of a ping (use: a nominating one) that the
// side with role sends from its local port to addr. It is derived, not
// stored: a pong proves the peer received exactly that ping, so a pong
// replayed from another address or onto another socket does not match.
func txid(k Key, role byte, use bool, localPort uint16, to netip.AddrPort) [8]byte {
	h := hmac.New(sha256.New, k[:])
	b := []byte{'t', role, 0}
	if use {
		b[2] = 1
	}
	b = binary.BigEndian.AppendUint16(b, localPort)
	a16 := to.Addr().Unmap().As16()
	b = append(b, a16[:]...)
	b = binary.BigEndian.AppendUint16(b, to.Port())
	h.Write(b)
	var t [8]byte
	copy(t[:], h.Sum(nil))
	return t
}
