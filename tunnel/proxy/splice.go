package proxy

import (
	"context"
	"io"
	"net"
	"sync"
)

// CopyFunc copies one direction of a spliced pair of connections: from src
// to dst until src ends (nil error at EOF) or a read or write fails.
type CopyFunc func(dst io.Writer, src io.Reader) error

type closeWriter interface{ CloseWrite() error }

// Splice copies both ways between a and b, toB from a to b and toA from b
// to a (nil: a plain copy through a 64 KiB buffer), until both directions
// end, then closes both. A direction that ends cleanly half-closes its
// destination with CloseWrite where the connection has one (one without
// is left open for the other direction). A direction that fails, or ctx
// ending, closes both at once: a half-closed flow whose far side stays
// silent must not keep its owner waiting.
func Splice(ctx context.Context, a, b net.Conn, toB, toA CopyFunc) {
	closeBoth := func() {
		a.Close()
		b.Close()
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn, cp CopyFunc) {
		defer wg.Done()
		if cp == nil {
			cp = bufferedCopy
		}
		if err := cp(dst, src); err != nil {
			closeBoth()
			return
		}
		if cw, ok := dst.(closeWriter); ok {
			cw.CloseWrite()
		}
	}
	wg.Add(2)
	go pipe(b, a, toB)
	go pipe(a, b, toA)
	wg.Wait()
	closeBoth()
}

// bufferedCopy is io.CopyBuffer through its own 64 KiB buffer.
func bufferedCopy(dst io.Writer, src io.Reader) error {
	buf := make([]byte, 64<<10)
	_, err := io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, buf)
	return err
}

// onlyWriter and onlyReader hide ReadFrom/WriteTo so io.CopyBuffer uses
// our buffer instead of small internal ones.
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }

// halfCloser half-closes a connection with CloseWrite where it has one and
// closes it otherwise, so that Splice passes an EOF on to it either way.
type halfCloser struct{ net.Conn }

// CloseWrite half-closes the connection, or closes it when it cannot.
func (h halfCloser) CloseWrite() error {
	if cw, ok := h.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return h.Conn.Close()
}
