package netns

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/internal/servetest"
)

func TestLinkPingAndDo(t *testing.T) {
	a := New(t, "a")
	b := New(t, "b")
	Link(t, a, "va", "192.0.2.1/24", b, "vb", "192.0.2.2/24")

	// Do: the interface list seen on the switched thread is the namespace's.
	var names []string
	err := b.Do(func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "lo,vb" {
		t.Fatalf("interfaces inside namespace b = %v, want [lo vb]", names)
	}

	// A listener created inside b is reachable from a, and not from the host
	// namespace (where 192.0.2.2 does not exist).
	ln := b.Listen("tcp", "192.0.2.2:0")
	defer servetest.TCP(ln, func(c net.Conn) { _, _ = c.Write([]byte("hello")) })()
	port := ln.Addr().(*net.TCPAddr).Port
	out, err := a.Run(context.Background(), "bash", "-c", "exec 3<>/dev/tcp/192.0.2.2/"+itoa(port)+"; cat <&3")
	if err != nil || out != "hello" {
		t.Fatalf("connect from a to listener in b: %q, %v", out, err)
	}
}

func TestStartKill(t *testing.T) {
	a := New(t, "p")
	p := a.Start("sleep", "60")
	if err := p.Signal(syscall.SIGTERM, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	default:
		t.Fatal("process not reaped after Signal returned")
	}
	out, err := exec.Command("ip", "netns", "pids", a.Name()).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("processes left in namespace: %q", out)
	}
}

func TestDoError(t *testing.T) {
	a := New(t, "e")
	want := "boom"
	err := a.Do(func() error { return errString(want) })
	if err == nil || err.Error() != want {
		t.Fatalf("Do returned %v, want %q", err, want)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type errString string

func (e errString) Error() string { return string(e) }

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}
