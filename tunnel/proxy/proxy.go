package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
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

type closeWriter interface{ CloseWrite() error }

// relay copies both ways between a and b, propagating half-closes, and
// returns when both directions are done or one fails. When ctx ends it
// closes both: a half-closed flow whose far side stays silent (stuck in
// the tunnel) must not keep the server, and so the tunnel's Close,
// waiting.
func relay(ctx context.Context, a, b net.Conn) {
	stop := context.AfterFunc(ctx, func() {
		a.Close()
		b.Close()
	})
	defer stop()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		_, err := io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, buf)
		if err != nil {
			a.Close()
			b.Close()
			return
		}
		if cw, ok := dst.(closeWriter); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	go pipe(a, b)
	go pipe(b, a)
	wg.Wait()
}

// onlyWriter and onlyReader hide ReadFrom/WriteTo so io.CopyBuffer uses
// our buffer instead of small internal ones.
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }
