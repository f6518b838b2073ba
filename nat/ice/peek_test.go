package ice

import (
	"net"
	"testing"
	"time"
)

// TestPeekConn: the datagram read ahead is the first one Read returns,
// arrived says it came, and later reads go on the connection.
func TestPeekConn(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	p := newPeekConn(a)
	defer p.Close()
	if p.arrived() {
		t.Fatal("arrived before anything was sent")
	}
	go func() {
		_, _ = b.Write([]byte("first"))
		_, _ = b.Write([]byte("second"))
	}()
	select {
	case <-p.in:
	case <-time.After(5 * time.Second):
		t.Fatal("the first datagram was not read ahead")
	}
	if !p.arrived() {
		t.Fatal("arrived is false after the first datagram")
	}
	buf := make([]byte, 16)
	for _, want := range []string{"first", "second"} {
		n, err := p.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
		}
	}
}

// TestPeekConnClosed: closing the connection ends the read-ahead, and
// Read reports the error; nothing counts as arrived.
func TestPeekConnClosed(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	p := newPeekConn(a)
	_ = p.Close()
	if _, err := p.Read(make([]byte, 8)); err == nil {
		t.Fatal("read on a closed connection succeeded")
	}
	if p.arrived() {
		t.Fatal("arrived after a close")
	}
}
