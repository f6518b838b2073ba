package userspace

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/tunnel"
)

// sourceServer writes size bytes to every connection and closes it.
func sourceServer(b *testing.B, size int64) *net.TCPAddr {
	ln := servetest.ListenTCP(b)
	b.Cleanup(serveSource(ln, size))
	return ln.Addr().(*net.TCPAddr)
}

// serveSource writes size bytes to every connection ln accepts and closes
// it. The returned stop closes ln and waits for every connection to end.
func serveSource(ln net.Listener, size int64) (stop func()) {
	buf := make([]byte, 256<<10)
	return servetest.TCP(ln, func(c net.Conn) { _ = writeN(c, size, buf) })
}

func socksDial(socks string, dst *net.TCPAddr) (net.Conn, error) {
	c, err := net.Dial("tcp", socks)
	if err != nil {
		return nil, err
	}
	ip := dst.IP.To4()
	req := []byte{5, 1, 0, 5, 1, 0, 1, ip[0], ip[1], ip[2], ip[3], byte(dst.Port >> 8), byte(dst.Port)}
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	rep := make([]byte, 2+10)
	if _, err := io.ReadFull(c, rep); err != nil || rep[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("socks reply %v: %v", rep, err)
	}
	return c, nil
}

// sinkServer reads and discards everything sent to it.
func sinkServer(b *testing.B) *net.TCPAddr {
	ln := servetest.ListenTCP(b)
	b.Cleanup(servetest.TCP(ln, func(c net.Conn) { io.Copy(io.Discard, c) }))
	return ln.Addr().(*net.TCPAddr)
}

// uploadThroughput sends size bytes on each of streams connections and
// returns bits per second.
func uploadThroughput(b *testing.B, streams int, size int64, dial func() (net.Conn, error)) float64 {
	return parallelStreams(b, streams, size, dial, func(c net.Conn) error {
		if err := writeN(c, size, make([]byte, 256<<10)); err != nil {
			return err
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, c) // wait until the far end has read it all
		return nil
	})
}

// throughput downloads size bytes on each of streams connections in
// parallel and returns bits per second.
func throughput(b *testing.B, streams int, size int64, dial func() (net.Conn, error)) float64 {
	return parallelStreams(b, streams, size, dial, func(c net.Conn) error {
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, make([]byte, 256<<10))
		if err == nil && n != size {
			err = fmt.Errorf("short read %d", n)
		}
		return err
	})
}

// parallelStreams runs transfer on each of streams connections from dial
// at once, fails b on any error, and returns the bits per second of
// size bytes per stream.
func parallelStreams(b *testing.B, streams int, size int64, dial func() (net.Conn, error), transfer func(net.Conn) error) float64 {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial()
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if err := transfer(c); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(streams) * float64(size) * 8 / time.Since(start).Seconds()
}

// writeN writes size bytes to w in chunks of buf.
func writeN(w io.Writer, size int64, buf []byte) error {
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// BenchmarkBulkTCP compares, in one run, TCP download throughput over
// plain loopback with the same download through SOCKS5 -> consumer
// netstack -> WireGuard -> provider netstack -> host socket, all on
// 127.0.0.1. Run: go test -run XXX -bench BulkTCP -benchtime 1x ./tunnel/userspace/
func BenchmarkBulkTCP(b *testing.B) {
	const size = 256 << 20
	src := sourceServer(b, size)
	p := benchPair(b, src.Port)
	sink := sinkServer(b)
	for _, streams := range []int{1, 4} {
		per := int64(size / streams)
		srcN := sourceServer(b, per)
		ref := newUpstreamPair(b, per)
		for i := 0; i < b.N; i++ {
			plain := throughput(b, streams, per, func() (net.Conn, error) { return net.Dial("tcp", srcN.String()) })
			direct := throughput(b, streams, per, func() (net.Conn, error) {
				return p.client.DialContext(context.Background(), "tcp", srcN.String())
			})
			socks := throughput(b, streams, per, func() (net.Conn, error) { return socksDial(p.client.SOCKSAddr().String(), srcN) })
			upstream := throughput(b, streams, per, func() (net.Conn, error) { return ref.dial(context.Background()) })
			fmt.Printf("streams=%d loopback %.0f Mbit/s | upstream wireguard-go netstack pair %.0f Mbit/s | openmyst netstack dial %.0f Mbit/s (%.2fx upstream) | openmyst via SOCKS5 %.0f Mbit/s (%.2fx upstream, %.3fx loopback)\n",
				streams, plain/1e6, upstream/1e6, direct/1e6, direct/upstream, socks/1e6, socks/upstream, socks/plain)
			b.ReportMetric(socks/upstream, fmt.Sprintf("vs-upstream-%dstream", streams))
			plainUp := uploadThroughput(b, streams, per, func() (net.Conn, error) { return net.Dial("tcp", sink.String()) })
			socksUp := uploadThroughput(b, streams, per, func() (net.Conn, error) { return socksDial(p.client.SOCKSAddr().String(), sink) })
			fmt.Printf("streams=%d upload: loopback %.0f Mbit/s | openmyst via SOCKS5 %.0f Mbit/s (%.3fx loopback)\n",
				streams, plainUp/1e6, socksUp/1e6, socksUp/plainUp)
			b.ReportMetric(socks/1e6, fmt.Sprintf("socks-Mbit/s-%dstream", streams))
			b.ReportMetric(socks/plain, fmt.Sprintf("ratio-%dstream", streams))
		}
	}
}

// upstreamPair is the in-process reference: two wireguard-go devices over
// wireguard-go's own tun/netstack, talking to each other on loopback; the
// far side serves size bytes per connection from inside its netstack. It
// is the same crypto and the same gVisor TCP, without the exit forwarder,
// the policy or the host-socket hop.
type upstreamPair struct {
	tnet *netstack.Net
	dst  netip.AddrPort
}

func (u *upstreamPair) dial(ctx context.Context) (net.Conn, error) {
	return u.tnet.DialContextTCPAddrPort(ctx, u.dst)
}

func newUpstreamPair(b *testing.B, size int64) *upstreamPair {
	ka, _ := tunnel.GenerateKey()
	kb, _ := tunnel.GenerateKey()
	aAddr, bAddr := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2")
	tunA, netA, err := netstack.CreateNetTUN([]netip.Addr{aAddr}, nil, tunnel.DefaultMTU)
	if err != nil {
		b.Fatal(err)
	}
	tunB, netB, err := netstack.CreateNetTUN([]netip.Addr{bAddr}, nil, tunnel.DefaultMTU)
	if err != nil {
		b.Fatal(err)
	}
	silent := device.NewLogger(device.LogLevelSilent, "")
	devB := device.NewDevice(tunB, conn.NewDefaultBind(), silent)
	devB.IpcSet(tunnel.DeviceUAPI(kb, 0) + tunnel.PeerUAPI(tunnel.PeerConfig{PublicKey: ka.PublicKey(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(aAddr, 32)}}))
	devB.Up()
	port, err := listenPort(devB)
	if err != nil {
		b.Fatal(err)
	}
	devA := device.NewDevice(tunA, conn.NewDefaultBind(), silent)
	devA.IpcSet(tunnel.DeviceUAPI(ka, 0) + tunnel.PeerUAPI(tunnel.PeerConfig{PublicKey: kb.PublicKey(),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(bAddr, 32)}, Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)}))
	devA.Up()
	ln, err := netB.ListenTCPAddrPort(netip.AddrPortFrom(bAddr, 80))
	if err != nil {
		b.Fatal(err)
	}
	stop := serveSource(ln, size)
	b.Cleanup(func() {
		stop()
		devA.Close()
		devB.Close()
	})
	return &upstreamPair{tnet: netA, dst: netip.AddrPortFrom(bAddr, 80)}
}

// benchPair is newPair for benchmarks, allowing every port on 127.0.0.1.
func benchPair(b *testing.B, _ int) *pair {
	pool, _ := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	r, _ := tunnel.ParseRule("tcp:127.0.0.1")
	pol, _ := tunnel.NewExitPolicy(tunnel.PolicyConfig{Allow: []tunnel.Rule{r}})
	ek, _ := tunnel.GenerateKey()
	exit, err := NewExit(ExitConfig{PrivateKey: ek, Gateway: pool.Gateway(), Policy: pol,
		DNSUpstream: netip.MustParseAddrPort("127.0.0.1:9"), Log: testLog()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { exit.Close() })
	lease, _ := pool.Allocate()
	ck, _ := tunnel.GenerateKey()
	if err := exit.AddPeer(context.Background(), tunnel.PeerConfig{PublicKey: ck.PublicKey(), AllowedIPs: lease.Prefixes()}); err != nil {
		b.Fatal(err)
	}
	client, err := Connect(context.Background(), ClientConfig{
		Session: tunnel.SessionConfig{PrivateKey: ck, Addresses: lease.Prefixes(), DNS: []netip.Addr{pool.Gateway().V4},
			PeerPublicKey: exit.PublicKey(), Endpoint: exit.Endpoint(), AllowedIPs: tunnel.FullTunnel()},
		SOCKSListen: "127.0.0.1:0", Log: testLog(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close() })
	return &pair{exit: exit, client: client, pool: pool, lease: lease, key: ck}
}

// TestIdlePeersProvider is the provider half of BenchmarkIdlePeers, run in
// a child process so its RSS is the provider's alone.
func TestIdlePeersProvider(t *testing.T) {
	if os.Getenv("TUNNEL_IDLE_PROVIDER") == "" {
		t.Skip("helper process for BenchmarkIdlePeers")
	}
	n, _ := strconv.Atoi(os.Getenv("TUNNEL_IDLE_PROVIDER"))
	pool, _ := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	ek, _ := tunnel.GenerateKey()
	pol, _ := tunnel.NewExitPolicy(tunnel.PolicyConfig{})
	exit, err := NewExit(ExitConfig{PrivateKey: ek, Gateway: pool.Gateway(), Policy: pol,
		DNSUpstream: netip.MustParseAddrPort("127.0.0.1:9"), Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer exit.Close()
	base := testenv.RSSKiB(0)
	fmt.Printf("endpoint %s %s\n", exit.Endpoint(), exit.PublicKey())
	for range n {
		ck, _ := tunnel.GenerateKey()
		lease, _ := pool.Allocate()
		if err := exit.AddPeer(context.Background(), tunnel.PeerConfig{PublicKey: ck.PublicKey(), AllowedIPs: lease.Prefixes()}); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("peer %s %s\n", ck, lease.V4)
	}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	sc.Scan() // the parent says when its peers have shaken hands
	runtime.GC()
	debug.FreeOSMemory()
	fmt.Printf("rss %d %d\n", base, testenv.RSSKiB(0))
}

// BenchmarkIdlePeers measures the provider's RSS with 200 peers that all
// completed a handshake and then stay idle. The provider runs in a child
// process; the 200 consumers are bare wireguard-go devices in this one.
// Run: go test -run XXX -bench IdlePeers -benchtime 1x ./tunnel/userspace/
func BenchmarkIdlePeers(b *testing.B) {
	const peers = 200
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestIdlePeersProvider$", "-test.v")
		cmd.Env = append(os.Environ(), "TUNNEL_IDLE_PROVIDER="+strconv.Itoa(peers))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		var endpoint netip.AddrPort
		var provPub tunnel.PublicKey
		var devs []*device.Device
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 {
				continue
			}
			switch f[0] {
			case "endpoint":
				endpoint = netip.MustParseAddrPort(f[1])
				provPub, _ = tunnel.ParsePublicKey(f[2])
			case "peer":
				k, err := tunnel.ParsePrivateKey(f[1])
				if err != nil {
					b.Fatal(err)
				}
				d := device.NewDevice(tuntest.NewChannelTUN().TUN(), conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
				cfg := tunnel.DeviceUAPI(k, 0) + tunnel.PeerUAPI(tunnel.PeerConfig{PublicKey: provPub,
					AllowedIPs: tunnel.FullTunnel(), Endpoint: endpoint, PersistentKeepalive: 25 * time.Second})
				if err := d.IpcSet(cfg); err != nil {
					b.Fatal(err)
				}
				d.Up()
				devs = append(devs, d)
			}
			if f[0] == "ready" {
				break
			}
		}
		for _, d := range devs {
			if err := tunnel.WaitHandshake(context.Background(), tunnel.DeviceCounter{Dev: d}, provPub, 20*time.Second); err != nil {
				b.Fatal(err)
			}
		}
		fmt.Fprintln(stdin, "report")
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "rss" {
				base, _ := strconv.Atoi(f[1])
				rss, _ := strconv.Atoi(f[2])
				fmt.Printf("provider RSS: %.1f MB with %d idle peers after handshake (%.1f MB before adding peers)\n", float64(rss)/1024, peers, float64(base)/1024)
				b.ReportMetric(float64(rss)/1024, "provider-RSS-MB")
			}
		}
		for _, d := range devs {
			d.Close()
		}
		cmd.Wait()
	}
}
