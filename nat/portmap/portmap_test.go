package portmap

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/natlab"
)

// Environment of the child process that runs a Keeper inside a lab host's
// namespace (a Go process cannot move all its threads into a namespace,
// and the UPnP client dials from goroutines of its own).
const (
	childMethodEnv   = "PORTMAP_TEST_METHOD"
	childPortEnv     = "PORTMAP_TEST_PORT"
	childLifetimeEnv = "PORTMAP_TEST_LIFETIME"
	childControlEnv  = "PORTMAP_TEST_CONTROL" // "1": print every Control call
)

func TestMain(m *testing.M) {
	if method := os.Getenv(childMethodEnv); method != "" {
		os.Exit(keepChild(method))
	}
	os.Exit(m.Run())
}

// keepChild keeps one mapping until SIGTERM and prints every report.
func keepChild(method string) int {
	port, _ := strconv.Atoi(os.Getenv(childPortEnv))
	life, _ := time.ParseDuration(os.Getenv(childLifetimeEnv))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg := Config{Lifetime: life, Description: "portmap test"}
	if method != "default" {
		cfg.Methods = []string{method}
	}
	if os.Getenv(childControlEnv) == "1" {
		cfg.Control = func(network, address string, _ syscall.RawConn) error {
			fmt.Printf("CONTROL %s %s\n", network, address)
			return nil
		}
	}
	c := New(cfg)
	c.Keep(ctx, UDP, uint16(port), func(m Mapping, err error) {
		if err != nil {
			fmt.Printf("FAILED %v\n", err)
			return
		}
		fmt.Printf("MAPPED %s %s %s\n", m.Method, m.External, m.Internal)
	})
	fmt.Println("STOPPED")
	return 0
}

var mappedRE = regexp.MustCompile(`MAPPED (\S+) (\S+) (\S+)`)

// TestKeepOnMiniupnpd maps the WireGuard port of a host behind the lab's
// UPnP router (Debian's miniupnpd) with each method, and checks from a
// stranger on the internet that the port is open while the Keeper runs,
// stays open past the lease's lifetime (renewal), and closes when the
// Keeper stops.
func TestKeepOnMiniupnpd(t *testing.T) {
	lab := natlab.New(t)
	site := lab.Site("pm", natlab.UPnP)
	site.StartUPnP(t)
	stranger := lab.PublicHost("stranger")

	for i, method := range []string{MethodNATPMP, MethodUPnP} {
		t.Run(method, func(t *testing.T) {
			port := uint16(51820 + i)
			const lifetime = 4 * time.Second
			conn, err := site.Host.ListenUDP(port)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			reaches := func(to netip.AddrPort) bool {
				// A fresh socket per probe: a refused flow's conntrack
				// entry would outlive the mapping change.
				sc, err := stranger.ListenUDP(0)
				if err != nil {
					t.Fatal(err)
				}
				defer sc.Close()
				if _, err := sc.WriteToUDPAddrPort([]byte("hello"), to); err != nil {
					t.Fatal(err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				buf := make([]byte, 16)
				n, _, err := conn.ReadFromUDPAddrPort(buf)
				return err == nil && string(buf[:n]) == "hello"
			}
			want := netip.AddrPortFrom(site.WAN, port)
			if reaches(want) {
				t.Fatal("open before mapping")
			}

			t.Setenv(childMethodEnv, method)
			t.Setenv(childPortEnv, strconv.Itoa(int(port)))
			t.Setenv(childLifetimeEnv, lifetime.String())
			p := site.Host.NS.Start(os.Args[0], "-test.run=^$")
			var mapped []string
			deadline := time.Now().Add(15 * time.Second)
			for mapped == nil {
				if time.Now().After(deadline) {
					t.Fatalf("no mapping made:\n%s", p.Output())
				}
				mapped = mappedRE.FindStringSubmatch(p.Output())
				time.Sleep(20 * time.Millisecond)
			}
			if mapped[1] != method || mapped[2] != want.String() || mapped[3] != netip.AddrPortFrom(site.Host.Addr, port).String() {
				t.Fatalf("mapping %q, want %s %s -> %s:%d", mapped[0], method, want, site.Host.Addr, port)
			}
			if !reaches(want) {
				t.Fatalf("mapped %s but a stranger's packet did not reach the host", want)
			}
			// Past the lease's lifetime: still open, because it was renewed.
			time.Sleep(lifetime + lifetime/2)
			if n := strings.Count(p.Output(), "MAPPED"); n < 2 {
				t.Fatalf("the lease was not renewed (%d mappings):\n%s", n, p.Output())
			}
			if !reaches(want) {
				t.Fatalf("the mapping lapsed although the keeper renews it:\n%s", p.Output())
			}
			if err := p.Signal(syscall.SIGTERM, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p.Output(), "STOPPED") || strings.Contains(p.Output(), "FAILED") {
				t.Fatalf("keeper output:\n%s", p.Output())
			}
			if reaches(want) {
				t.Fatalf("the port stayed open after the keeper stopped:\n%s", p.Output())
			}
		})
	}
}

func TestParseRoutes(t *testing.T) {
	const table = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	0000A8C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
eth0	00000000	0101A8C0	0003	0	0	0	00000000	0	0	0
`
	gw, err := parseRoutes(bufio.NewScanner(strings.NewReader(table)))
	if err != nil || gw != netip.MustParseAddr("192.168.1.1") {
		t.Fatalf("gateway %v %v, want 192.168.1.1", gw, err)
	}
	_, err = parseRoutes(bufio.NewScanner(strings.NewReader(strings.SplitAfterN(table, "\n", 3)[1])))
	if err == nil {
		t.Fatal("a table without a default route gave a gateway")
	}
}

// TestUPnPOnlyRouter maps a port on a router that speaks UPnP IGD and not
// NAT-PMP (miniupnpd with enable_natpmp=no), with the default methods:
// NAT-PMP fails, UPnP maps, and every socket the UPnP client opens (the
// SSDP search's UDP socket, TCP to the description and control URLs on
// the gateway) goes through Config.Control; the mapping is gone after
// the keeper stops.
func TestUPnPOnlyRouter(t *testing.T) {
	lab := natlab.New(t)
	site := lab.Site("pmu", natlab.UPnP)
	site.StartUPnP(t, natlab.UPnPOnly)
	t.Setenv(childMethodEnv, "default")
	t.Setenv(childPortEnv, "51822")
	t.Setenv(childLifetimeEnv, "1h")
	t.Setenv(childControlEnv, "1")
	p := site.Host.NS.Start(os.Args[0], "-test.run=^$")
	deadline := time.Now().Add(15 * time.Second)
	var mapped []string
	for mapped == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no mapping made:\n%s", p.Output())
		}
		mapped = mappedRE.FindStringSubmatch(p.Output())
		time.Sleep(20 * time.Millisecond)
	}
	if mapped[1] != MethodUPnP || mapped[2] != netip.AddrPortFrom(site.WAN, 51822).String() {
		t.Fatalf("mapping %q, want upnp %s:51822", mapped[0], site.WAN)
	}
	out := p.Output()
	for _, want := range []string{
		"CONTROL udp4 " + site.Host.Addr.String() + ":0", // the SSDP search
		"CONTROL tcp4 " + site.LAN.String() + ":",        // HTTP to the gateway
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q: the UPnP client opened a socket without Control\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "CONTROL tcp4 ") && !strings.HasPrefix(line, "CONTROL tcp4 "+site.LAN.String()+":") {
			t.Errorf("the UPnP client dialled beyond the gateway: %s", line)
		}
	}
	if err := p.Signal(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if r := site.Router.MustRun("nft", "list", "table", "inet", "miniupnpd"); strings.Contains(r, "51822") {
		t.Fatalf("the mapping outlived the keeper:\n%s\n%s", r, p.Output())
	}
}
