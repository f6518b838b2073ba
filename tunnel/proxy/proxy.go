package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
)

// Network is where the proxies send traffic.
type Network interface {
	// DialContext opens a TCP connection; address is host:port and host
	// may be a name, which the Network resolves.
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
	// ListenPacket opens an unconnected UDP socket for "udp4" or "udp6",
	// used for SOCKS5 UDP ASSOCIATE.
	ListenPacket(ctx context.Context, network string) (net.PacketConn, error)
	// LookupNetIP resolves a name ("ip", "ip4" or "ip6").
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// server is the accept loop both proxies share: it owns every connection
// it accepts and closes them when the context ends.
type server struct {
	net  Network
	log  *slog.Logger
	wg   sync.WaitGroup
	mu   sync.Mutex
	live map[net.Conn]struct{}
}

func newServer(n Network, log *slog.Logger) *server {
	if log == nil {
		log = slog.Default()
	}
	return &server{net: n, log: log, live: map[net.Conn]struct{}{}}
}

// serve accepts on ln until ctx ends or ln fails, running handle for each
// connection; it closes ln and every live connection and waits for their
// handlers before returning.
func (s *server) serve(ctx context.Context, ln net.Listener, handle func(ctx context.Context, c net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.live {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("proxy accept: %w", err)
		}
		s.mu.Lock()
		s.live[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.live, c)
				s.mu.Unlock()
				c.Close()
			}()
			handle(ctx, c)
		}()
	}
}

// relay splices a and b: the client's connection and the one dialled
// through the tunnel (which Splice half-closes, or closes when it cannot).
func relay(ctx context.Context, a, b net.Conn) {
	Splice(ctx, a, halfCloser{b}, nil, nil)
}
