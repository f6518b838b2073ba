package punch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmyst/openmyst/tunnel/netns"
)

// nsListen opens sockets on 127.0.0.1 inside ns: the spray of a test
// reaches only the test's own namespace.
func nsListen(ns *netns.NS) func(context.Context) (*net.UDPConn, error) {
	return func(context.Context) (*net.UDPConn, error) {
		var c *net.UDPConn
		err := ns.Do(func() error {
			var err error
			c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			return err
		})
		return c, err
	}
}

// testConfig punches on the loopback of a private namespace: no NAT, so
// the "hard" side's ports are its sockets' own, in the kernel's
// ephemeral range, which the easy side guesses in.
func testConfig(ns *netns.NS) Config {
	return Config{
		AllowPrivate: true, Listen: nsListen(ns), Sockets: 64, Probes: MaxProbes,
		Rate: 20000, Timeout: 5 * time.Second, MinPort: 32768, MaxPort: 60999,
	}
}

// local makes a side's Local without the STUN check.
func local(t *testing.T, cfg Config, mapping string) *Local {
	t.Helper()
	cfg = cfg.withDefaults()
	c, err := cfg.listen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Local{cfg: cfg, conn: c, info: Info{Mapping: mapping, Addr: c.LocalAddr().(*net.UDPAddr).AddrPort().String()}}
}

type runResult struct {
	c   *Conn
	err error
}

func runBoth(t *testing.T, ctl, ctd *Local) (*Conn, *Conn) {
	t.Helper()
	var wg sync.WaitGroup
	var a, b runResult
	wg.Add(2)
	go func() { defer wg.Done(); a.c, a.err = ctl.Run(t.Context(), testKey, true, ctd.Info()) }()
	go func() { defer wg.Done(); b.c, b.err = ctd.Run(t.Context(), testKey, false, ctl.Info()) }()
	wg.Wait()
	if a.err != nil || b.err != nil {
		t.Fatalf("controlling: %v; controlled: %v", a.err, b.err)
	}
	t.Cleanup(func() { a.c.Close(); b.c.Close() })
	return a.c, b.c
}

// TestRun punches between a hard and an easy side, either one
// controlling, and checks that both picked the same socket pair, that
// datagrams cross it both ways with punch packets kept out of them, and
// that the path is lost once the peer goes away.
func TestRun(t *testing.T) {
	ns := netns.New(t, "punch")
	for _, hardControls := range []bool{false, true} {
		t.Run(fmt.Sprintf("hard-controlling-%v", hardControls), func(t *testing.T) {
			cfg := testConfig(ns)
			cfg.LostAfter = 600 * time.Millisecond
			hard, easy := local(t, cfg, Hard), local(t, cfg, Easy)
			ctl, ctd := easy, hard
			if hardControls {
				ctl, ctd = hard, easy
			}
			a, b := runBoth(t, ctl, ctd)
			if a.Remote() != b.LocalAddr().(*net.UDPAddr).AddrPort() || b.Remote() != a.LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("different pairs: %v -> %v, %v -> %v", a.LocalAddr(), a.Remote(), b.LocalAddr(), b.Remote())
			}
			// Both read (answering keepalive pings); data crosses, punch
			// packets never reach the reader.
			got := make(chan string, 16)
			for _, c := range []*Conn{a, b} {
				go func() {
					buf := make([]byte, 1500)
					for {
						n, err := c.Read(buf)
						if err != nil {
							return
						}
						got <- string(buf[:n])
					}
				}()
			}
			for _, c := range []*Conn{a, b} {
				if _, err := c.Write([]byte("wireguard " + c.LocalAddr().String())); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				select {
				case s := <-got:
					if len(s) < 10 || s[:10] != "wireguard " {
						t.Fatalf("read %q", s)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("no datagram through the punched pair")
				}
			}
			// Keepalives keep a quiet path alive for well over LostAfter.
			select {
			case <-a.Lost():
				t.Fatal("a quiet path with a live peer was lost")
			case <-b.Lost():
				t.Fatal("a quiet path with a live peer was lost")
			case <-time.After(3 * cfg.LostAfter):
			}
			select {
			case s := <-got:
				t.Fatalf("a punch packet reached the reader: %q", s)
			default:
			}
			b.Close()
			select {
			case <-a.Lost():
			case <-time.After(5 * cfg.LostAfter):
				t.Fatal("the path was not lost after the peer closed")
			}
		})
	}
}

// TestRunRefusesStrangers: an easy side whose hard peer never shows up
// gets packets from a stranger at the peer's address — pings under
// another key, and every packet of its own reflected back — and must
// neither answer them nor select a path.
func TestRunRefusesStrangers(t *testing.T) {
	ns := netns.New(t, "punchx")
	cfg := testConfig(ns)
	cfg.Timeout = 1500 * time.Millisecond
	easy := local(t, cfg, Easy)
	// The stranger sits on the hard peer's announced address.
	stranger, err := cfg.withDefaults().listen(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	peer := Info{Mapping: Hard, Addr: stranger.LocalAddr().(*net.UDPAddr).AddrPort().String()}
	to := easy.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	done := make(chan error, 1)
	go func() {
		c, err := easy.Run(t.Context(), testKey, true, peer)
		if c != nil {
			c.Close()
		}
		done <- err
	}()
	pongs := 0
	forged := packet{kind: kindUse, role: roleControlled}.encode(otherKey)
	buf := make([]byte, 64)
	for deadline := time.Now().Add(cfg.Timeout + time.Second); time.Now().Before(deadline); {
		_, _ = stranger.WriteToUDPAddrPort(forged, to)
		_ = stranger.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, from, err := stranger.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		if p, err := decode(buf[:n], testKey, roleControlling); err == nil && p.kind == kindPong {
			pongs++
		}
		_, _ = stranger.WriteToUDPAddrPort(buf[:n], from) // reflect
	}
	if err := <-done; err == nil {
		t.Fatal("a path was selected with nobody but a stranger")
	}
	if pongs > 0 {
		t.Fatalf("the stranger got %d pongs", pongs)
	}
}

// TestRunRefusesBadPeers: a peer announcing an address the policy
// refuses (loopback outside a devnet) or the same mapping gets no
// packet, and the sockets are closed.
func TestRunRefusesBadPeers(t *testing.T) {
	ns := netns.New(t, "punchp")
	for name, tc := range map[string]struct {
		allowPrivate bool
		peer         Info
		want         error
	}{
		"loopback":     {false, Info{Mapping: Hard, Addr: "127.0.0.1:4000"}, ErrBadInfo},
		"metadata":     {true, Info{Mapping: Hard, Addr: "169.254.169.254:80"}, ErrBadInfo},
		"same mapping": {true, Info{Mapping: Easy, Addr: "127.0.0.1:4000"}, ErrNotApplicable},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(ns)
			cfg.AllowPrivate = tc.allowPrivate
			l := local(t, cfg, Easy)
			if _, err := l.Run(t.Context(), testKey, true, tc.peer); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if _, err := l.conn.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("socket still open: %v", err)
			}
		})
	}
}

// TestSocketBudget: hard sides of one process share a bound on their
// extra sockets; a run that cannot get enough does not punch, and a
// finished run gives its sockets back.
func TestSocketBudget(t *testing.T) {
	if got := takeSockets(MaxProcessSockets - 10); got != MaxProcessSockets-10 {
		t.Fatalf("took %d", got)
	}
	if got := takeSockets(100); got != 0 {
		t.Fatalf("took %d of the last 10 (fewer than %d)", got, minSockets)
	}
	ns := netns.New(t, "punchb")
	cfg := testConfig(ns)
	l := local(t, cfg, Hard)
	if _, err := l.Run(t.Context(), testKey, false, Info{Mapping: Easy, Addr: "127.0.0.1:9"}); err == nil || !strings.Contains(err.Error(), "too many punches") {
		t.Fatalf("error %v, want too many punches", err)
	}
	releaseSockets(MaxProcessSockets - 10)
	if got := takeSockets(MaxProcessSockets); got != MaxProcessSockets {
		t.Fatalf("took %d after the release", got)
	}
	releaseSockets(MaxProcessSockets)
}

// TestAbandon: a Run whose peer never answers ends with ErrAbandoned
// once abandoned — on either side, and also when Abandon came before
// Run — instead of at its time limit (a minute here: a Run that waited
// for it would fail the test's deadline error check, not a clock).
func TestAbandon(t *testing.T) {
	ns := netns.New(t, "punchab")
	for _, tc := range []struct {
		name        string
		controlling bool
		before      bool
	}{
		{"controlling", true, false},
		{"controlled", false, false},
		{"before run", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(ns)
			cfg.Timeout = time.Minute
			me, silent := local(t, cfg, Hard), local(t, cfg, Easy) // silent never runs
			if tc.before {
				me.Abandon()
			}
			errc := make(chan error, 1)
			go func() {
				c, err := me.Run(t.Context(), testKey, tc.controlling, silent.Info())
				if c != nil {
					c.Close()
				}
				errc <- err
			}()
			if !tc.before {
				time.Sleep(100 * time.Millisecond)
				me.Abandon()
				me.Abandon() // twice is fine
			}
			select {
			case err := <-errc:
				if !errors.Is(err, ErrAbandoned) {
					t.Fatalf("Run: %v, want ErrAbandoned", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not end after Abandon")
			}
		})
	}
}
