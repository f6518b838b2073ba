package probe

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// handleCheck serves ProtocolCheck: a peer asks this node to check it.
func (s *Service) handleCheck(st network.Stream) {
	defer st.Close()
	requester := st.Conn().RemotePeer()
	// Every request counts against its peer's limit, a bad one too, and
	// has a few seconds to arrive.
	allowed := s.perPeer.Allow(requester, s.cfg.Now())
	_ = st.SetDeadline(time.Now().Add(requestTimeout))
	b, err := readAll(st, MaxRequestSize)
	if err != nil {
		st.Reset()
		return
	}
	req, err := DecodeRequest(b)
	if err != nil {
		s.log.Debug("probe: bad request", "peer", requester, "err", err)
		st.Reset()
		return
	}
	_ = st.SetDeadline(time.Now().Add(s.cfg.Timeout + requestTimeout))
	var resp Response
	if !allowed {
		resp.Refused = "rate limited"
	} else {
		select {
		case s.slots <- struct{}{}:
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
			// The requester's addresses come from identify: a request
			// right after connecting may arrive before it has run here.
			if h, ok := s.cfg.Host.(identifier); ok {
				select {
				case <-h.IDService().IdentifyWait(st.Conn()):
				case <-ctx.Done():
				}
			}
			resp = s.check(ctx, st.Conn(), req)
			cancel()
			<-s.slots
		default:
			resp.Refused = "busy"
		}
	}
	out, err := resp.Encode()
	if err != nil {
		s.log.Warn("probe: encode response", "err", err)
		st.Reset()
		return
	}
	_, _ = st.Write(out)
}

// identifier is a host that says when identify has run on a connection
// (go-libp2p's basic host).
type identifier interface {
	IDService() identify.IDService
}

// check dials requester from a fresh host and signs what it saw.
func (s *Service) check(ctx context.Context, c network.Conn, req Request) Response {
	requester := c.RemotePeer()
	res := Result{V: Version, Requester: requester.String(), Checker: s.cfg.Host.ID().String(), Nonce: req.Nonce}
	path, addr, rtt, err := s.dialAndEcho(ctx, c, req.Nonce)
	res.At = s.cfg.Now().Unix()
	if err != nil {
		res.Error = truncate(err.Error(), MaxTextLen)
	} else {
		res.Reachable, res.Path, res.Addr, res.RTTMillis = true, path, truncate(addr, MaxTextLen), rtt.Milliseconds()
	}
	key := s.cfg.Host.Peerstore().PrivKey(s.cfg.Host.ID())
	if key == nil {
		return Response{Refused: "no signing key"}
	}
	sig, err := res.Sign(key)
	if err != nil {
		s.log.Warn("probe: sign result", "err", err)
		return Response{Refused: "cannot sign"}
	}
	return Response{Result: &res, Sig: sig}
}

// Advertised returns the addresses p advertises about itself: its signed
// peer record when this node has one, else the addresses identify and
// peer routing recorded for it.
func Advertised(ps peerstore.Peerstore, p peer.ID) []ma.Multiaddr {
	if cab, ok := peerstore.GetCertifiedAddrBook(ps); ok {
		if env := cab.GetPeerRecord(p); env != nil {
			if rec, err := env.Record(); err == nil {
				if pr, ok := rec.(*peer.PeerRecord); ok && pr.PeerID == p {
					return pr.Addrs
				}
			}
		}
	}
	return ps.Addrs(p)
}

func (s *Service) dialAndEcho(ctx context.Context, c network.Conn, nonceHex string) (path, addr string, rtt time.Duration, err error) {
	requester := c.RemotePeer()
	addrs := s.ownAddrs(c, Dialable(Advertised(s.cfg.Host.Peerstore(), requester), s.cfg.AllowPrivate))
	if len(addrs) == 0 {
		return "", "", 0, errors.New("no dialable advertised address")
	}
	nonce, err := decodeNonce(nonceHex)
	if err != nil {
		return "", "", 0, err
	}
	d, err := s.cfg.NewDialer()
	if err != nil {
		return "", "", 0, err
	}
	defer d.Close()
	if err := d.Connect(ctx, peer.AddrInfo{ID: requester, Addrs: addrs}); err != nil {
		return "", "", 0, fmt.Errorf("connect: %w", err)
	}
	st, err := d.NewStream(network.WithAllowLimitedConn(ctx, "probe"), requester, ProtocolEcho)
	if err != nil {
		return "", "", 0, fmt.Errorf("open echo stream: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	msg := make([]byte, NonceSize+EchoSize)
	copy(msg, nonce[:])
	if _, err := rand.Read(msg[NonceSize:]); err != nil {
		return "", "", 0, err
	}
	start := time.Now()
	if _, err := st.Write(msg); err != nil {
		st.Reset()
		return "", "", 0, fmt.Errorf("echo: %w", err)
	}
	back := make([]byte, EchoSize)
	if _, err := io.ReadFull(st, back); err != nil {
		st.Reset()
		return "", "", 0, fmt.Errorf("echo: %w", err)
	}
	rtt = time.Since(start)
	if string(back) != string(msg[NonceSize:]) {
		return "", "", 0, errors.New("echo: payload differs")
	}
	fresh := st.Conn()
	path = PathDirect
	if fresh.Stat().Limited || isCircuit(fresh.RemoteMultiaddr()) {
		path = PathRelay
	}
	return path, fresh.RemoteMultiaddr().String(), rtt, nil
}

// ownAddrs keeps the addresses of as that are the requester's own, as far
// as this node can tell, so that a requester cannot aim the check at
// somebody else: a direct address must be at the IP address the request
// came from (a node's public, or port-mapped, address is where its
// connections come from), and a circuit address must go through a relay
// this node knows at that address (itself, or a peer whose recorded
// addresses include it).
func (s *Service) ownAddrs(c network.Conn, as []ma.Multiaddr) []ma.Multiaddr {
	from, ferr := manet.ToIP(c.RemoteMultiaddr())
	out := as[:0:0]
	for _, a := range as {
		relay, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT })
		if !relay.Equal(a) {
			if s.knownRelay(relay) {
				out = append(out, a)
			}
			continue
		}
		ip, err := manet.ToIP(a)
		if err == nil && ferr == nil && ip.Equal(from) {
			out = append(out, a)
		}
	}
	return out
}

// knownRelay reports whether relay (".../p2p/<id>") is this node, or a
// peer this node has recorded at that address.
func (s *Service) knownRelay(relay ma.Multiaddr) bool {
	transport, id := peer.SplitAddr(relay)
	if transport == nil || id == "" {
		return false
	}
	h := s.cfg.Host
	known := h.Addrs()
	if id != h.ID() {
		known = h.Peerstore().Addrs(id)
	}
	for _, k := range known {
		if k.Equal(transport) {
			return true
		}
	}
	return false
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
