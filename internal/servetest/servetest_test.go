package servetest

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestUDPEchoAnswersEveryDatagram(t *testing.T) {
	echo := UDPEcho(t)
	c, err := net.DialUDP("udp", nil, echo.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 100)
	for _, msg := range []string{"one", "two"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:n]); got != "echo:"+msg {
			t.Fatalf("reply %q, want %q", got, "echo:"+msg)
		}
	}
}

func TestUDPSendsNothingForNil(t *testing.T) {
	pc := ListenUDP(t)
	UDP(t, pc, func(data []byte, _ net.Addr) []byte {
		if string(data) == "quiet" {
			return nil
		}
		return []byte("ok")
	})
	c, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("quiet"))
	c.Write([]byte("loud"))
	buf := make([]byte, 100)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("first reply %q %v, want ok (none for quiet)", buf[:n], err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("a second reply %q: quiet was answered", buf[:n])
	}
}

func TestForwardCopiesBothWays(t *testing.T) {
	back, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	go func() {
		c, err := back.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // until the forwarder half-closes
		c.Write(append([]byte("got "), b...))
	}()
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer front.Close()
	go Forward(front, back.Addr().String())
	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "got hello" {
		t.Fatalf("through the forwarder: %q %v, want %q", b, err, "got hello")
	}
}

func TestCountAccepts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n := CountAccepts(ln)
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadAll(c) // the counter closes it after counting
		c.Close()
	}
	if got := n.Load(); got != 3 {
		t.Fatalf("counted %d, want 3", got)
	}
}

func TestTCPEchoServesConnectionsAtOnce(t *testing.T) {
	addr := TCPEcho(t)
	a, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	buf := make([]byte, 5)
	for _, c := range []*net.TCPConn{b, a} { // b first: a is still open
		c.Write([]byte("hello"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("echo %q %v", buf, err)
		}
	}
}
