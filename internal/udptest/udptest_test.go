package udptest

import (
	"net"
	"testing"
	"time"
)

func TestEchoAnswersEveryDatagram(t *testing.T) {
	echo := Echo(t)
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

func TestServeSendsNothingForNil(t *testing.T) {
	pc := Listen(t)
	Serve(t, pc, func(data []byte, _ net.Addr) []byte {
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
