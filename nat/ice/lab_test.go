package ice

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/openmyst/openmyst/internal/natlab"
	"github.com/openmyst/openmyst/relay"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// The lab test runs each role in a child process of the test binary,
// inside its own namespace: Go cannot move a whole process into a
// namespace, and pion's agent opens sockets from goroutines of its own.
const (
	childRoleEnv    = "ICE_LAB_ROLE" // "relay", "consumer" or "provider"
	childServersEnv = "ICE_LAB_SERVERS"
	childSecretEnv  = "ICE_LAB_SECRET"
	childPublicEnv  = "ICE_LAB_PUBLIC"
	childRelayOnly  = "ICE_LAB_RELAY_ONLY"
)

// Tunnel addresses and the payload of the lab sessions.
const (
	providerTunnelIP = "10.77.0.1"
	consumerTunnelIP = "10.77.0.2"
	payloadSize      = 2 << 20
)

var labSecret = "natlab-relay-secret-0123456789abcdef"

func TestMain(m *testing.M) {
	switch role := os.Getenv(childRoleEnv); role {
	case "":
		os.Exit(m.Run())
	case "relay":
		os.Exit(runRelay())
	default:
		if err := runPeer(role); err != nil {
			fmt.Printf("FATAL %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

func runRelay() int {
	s, err := relay.Start(relay.Config{
		UDP: ":3478", TCP: ":3478",
		PublicIP: netip.MustParseAddr(os.Getenv(childPublicEnv)),
		Secret:   []byte(labSecret),
	})
	if err != nil {
		fmt.Printf("FATAL %v\n", err)
		return 1
	}
	defer s.Close()
	fmt.Println("READY")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	return 0
}

// payload is what the provider serves: deterministic, so both sides can
// check it.
func payload() []byte {
	b := make([]byte, payloadSize)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// runPeer is one side: WireGuard on a kernel TUN whose datagrams go over
// ICE. Protocol with the parent on stdout/stdin: it prints "OFFER <json>"
// and "KEY <hex>", reads "PEER <offer json> <key hex>", then prints
// "PATH <kind> <local> <remote>", and the consumer "FETCHED <n> <sha256>"
// after an HTTP GET through the tunnel.
func runPeer(role string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var servers []Server
	if err := json.Unmarshal([]byte(os.Getenv(childServersEnv)), &servers); err != nil {
		return fmt.Errorf("servers: %w", err)
	}
	agent, err := NewAgent(Config{Servers: servers, RelayOnly: os.Getenv(childRelayOnly) == "1", Timeout: 20 * time.Second}, role == "consumer")
	if err != nil {
		return err
	}
	defer agent.Close()
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	offer, err := agent.Gather(gctx)
	cancel()
	if err != nil {
		return err
	}
	key, err := tunnel.GenerateKey()
	if err != nil {
		return err
	}
	ob, _ := json.Marshal(offer)
	fmt.Printf("OFFER %s\nKEY %s\n", base64.StdEncoding.EncodeToString(ob), key.PublicKey().Hex())

	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read peer: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "PEER" {
		return fmt.Errorf("peer line %q", line)
	}
	ob2, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return fmt.Errorf("peer offer: %w", err)
	}
	remote, _, err := DecodeOffer(ob2, agent.cfg.Policy)
	if err != nil {
		return err
	}
	conn, err := agent.Connect(ctx, remote)
	if err != nil {
		return err
	}
	p := agent.Path()
	fmt.Printf("PATH %s %s %s %s\n", p.Kind, p.Local, p.Remote, p.RemoteAddr)

	bind := NewBind()
	defer bind.Shutdown()
	ep, err := bind.Add("peer", conn)
	if err != nil {
		return err
	}
	tdev, err := tun.CreateTUN("wg0", 1380)
	if err != nil {
		return fmt.Errorf("tun: %w", err)
	}
	self, peer := providerTunnelIP, consumerTunnelIP
	keepalive := ""
	if role == "consumer" {
		self, peer = consumerTunnelIP, providerTunnelIP
		keepalive = "persistent_keepalive_interval=1\n"
	}
	// The interface is up before WireGuard delivers the first packet.
	for _, args := range [][]string{{"addr", "add", self + "/24", "dev", "wg0"}, {"link", "set", "wg0", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
	dev := device.NewDevice(tdev, bind, &device.Logger{Verbosef: device.DiscardLogf, Errorf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, role+": "+f+"\n", a...) }})
	defer dev.Close()
	uapi := fmt.Sprintf("private_key=%s\npublic_key=%s\nendpoint=%s\nallowed_ip=%s/32\n%s",
		hex.EncodeToString(key[:]), f[2], ep, peer, keepalive)
	if err := dev.IpcSet(uapi); err != nil {
		return fmt.Errorf("wireguard config: %w", err)
	}
	if err := dev.Up(); err != nil {
		return err
	}

	if role == "provider" {
		ln, err := net.Listen("tcp4", providerTunnelIP+":8080")
		if err != nil {
			return err
		}
		body := payload()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Println("SERVING")
		<-ctx.Done()
		return nil
	}
	client := &http.Client{Timeout: 15 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + providerTunnelIP + ":8080/")
		if err != nil {
			lastErr = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		fmt.Printf("FETCHED %d %x\n", n, h.Sum(nil))
		return nil
	}
	return fmt.Errorf("no HTTP through the tunnel: %v", lastErr)
}

// child is a role process inside a namespace, with its stdin for the
// signalling lines.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	out    strings.Builder
	errOut lockedBuffer
	done   chan struct{}
}

// lockedBuffer collects a child's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startChild(t *testing.T, ns *netns.NS, env ...string) *child {
	t.Helper()
	cmd := ns.Command(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	cmd.Stderr = &c.errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.stdin = stdin
	go func() {
		defer close(c.done)
		s := bufio.NewScanner(stdout)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			c.lines <- s.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
		_ = cmd.Wait()
	})
	return c
}

// expect waits for a line starting with prefix and returns the rest.
func (c *child) expect(t *testing.T, prefix string, within time.Duration) string {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited before %q:\n%s\nstderr:\n%s", prefix, c.out.String(), c.errOut.String())
			}
			c.out.WriteString(l + "\n")
			if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
				return rest
			}
			if l == prefix {
				return ""
			}
			if strings.HasPrefix(l, "FATAL ") {
				t.Fatalf("child: %s\n%s\nstderr:\n%s", l, c.out.String(), c.errOut.String())
			}
		case <-timer.C:
			t.Fatalf("no %q within %v:\n%s\nstderr:\n%s", prefix, within, c.out.String(), c.errOut.String())
		}
	}
}

// labPair runs one consumer × provider session over ICE in the NAT lab and
// returns the path the consumer used.
func labPair(t *testing.T, lab *natlab.Lab, servers []Server, cons, prov *natlab.Site, relayOnly bool) Path {
	t.Helper()
	sv, _ := json.Marshal(servers)
	env := []string{childServersEnv + "=" + string(sv)}
	if relayOnly {
		env = append(env, childRelayOnly+"=1")
	}
	p := startChild(t, prov.Host.NS, append(env, childRoleEnv+"=provider")...)
	c := startChild(t, cons.Host.NS, append(env, childRoleEnv+"=consumer")...)
	pOffer, pKey := p.expect(t, "OFFER", 15*time.Second), p.expect(t, "KEY", time.Second)
	cOffer, cKey := c.expect(t, "OFFER", 15*time.Second), c.expect(t, "KEY", time.Second)
	fmt.Fprintf(p.stdin, "PEER %s %s\n", cOffer, cKey)
	fmt.Fprintf(c.stdin, "PEER %s %s\n", pOffer, pKey)
	f := strings.Fields(c.expect(t, "PATH", 30*time.Second))
	p.expect(t, "PATH", 30*time.Second)
	p.expect(t, "SERVING", 10*time.Second)
	got := strings.Fields(c.expect(t, "FETCHED", 30*time.Second))
	sum := sha256.Sum256(payload())
	if len(got) != 2 || got[0] != fmt.Sprint(payloadSize) || got[1] != hex.EncodeToString(sum[:]) {
		t.Fatalf("fetched %v, want %d bytes with sha256 %x", got, payloadSize, sum)
	}
	path := Path{Kind: f[0], Local: f[1], Remote: f[2]}
	return path
}

// TestLabPairs connects a consumer and a provider over ICE + WireGuard
// behind every combination of NATs in the lab, fetches a file through the
// tunnel whose bytes must match, and checks which path was chosen: direct
// wherever hole punching can work, through the relay elsewhere.
func TestLabPairs(t *testing.T) {
	lab := natlab.New(t)
	rl := startChild(t, lab.Internet(), childRoleEnv+"=relay", childPublicEnv+"="+natlab.InternetGateway.String())
	rl.expect(t, "READY", 10*time.Second)
	user, pass, err := relay.Credentials([]byte(labSecret), "lab", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	gw := natlab.InternetGateway.String()
	servers := []Server{
		{URL: "stun:" + gw + ":3478"},
		{URL: "turn:" + gw + ":3478?transport=udp", Username: user, Password: pass},
		{URL: "turn:" + gw + ":3478?transport=tcp", Username: user, Password: pass},
	}
	if os.Getenv("ICE_LAB_NO_TURN") == "1" {
		servers = servers[:1]
	}

	// Forwarded and UPnP routers behave as EndpointIndependent ones until
	// a node advertises its mapped port as a candidate (nat/portmap makes
	// the mapping; feeding it to ICE is not built yet), so they are left
	// out of this matrix rather than counted twice.
	kinds := []natlab.Kind{natlab.Public, natlab.EndpointIndependent, natlab.FullCone, natlab.Symmetric, natlab.UDPBlocked, natlab.DoubleNAT}
	if testing.Short() {
		kinds = []natlab.Kind{natlab.Public, natlab.EndpointIndependent, natlab.Symmetric, natlab.UDPBlocked}
	}
	for _, ck := range kinds {
		for _, pk := range kinds {
			t.Run(ck.String()+"-"+pk.String(), func(t *testing.T) {
				// Each pair has sites of its own, so pairs run in parallel.
				t.Parallel()
				cons, prov := lab.Site("c"+ck.String()[:3], ck), lab.Site("p"+pk.String()[:3], pk)
				start := time.Now()
				path := labPair(t, lab, servers, cons, prov, false)
				want := expectedPath(ck, pk)
				t.Logf("path %s (%s/%s) in %v", path.Kind, path.Local, path.Remote, time.Since(start).Round(time.Millisecond))
				if path.Kind != want {
					t.Errorf("consumer %v, provider %v: path %s (%s/%s), want %s", ck, pk, path.Kind, path.Local, path.Remote, want)
				}
			})
		}
	}
}

// expectedPath is the path ICE must find between a consumer behind c and a
// provider behind p.
func expectedPath(c, p natlab.Kind) string {
	if c == natlab.UDPBlocked || p == natlab.UDPBlocked {
		return PathRelay // TURN over TCP
	}
	open := func(k natlab.Kind) bool { return k == natlab.Public || k == natlab.FullCone }
	hard := func(k natlab.Kind) bool { return k == natlab.Symmetric }
	// Both endpoint-independent (port-restricted cone, double NAT,
	// forwarded, UPnP routers too): simultaneous checks punch through.
	if !hard(c) && !hard(p) {
		return PathDirect
	}
	// A symmetric side punches through only to a side that accepts
	// packets from any remote endpoint.
	if (hard(c) && open(p)) || (hard(p) && open(c)) {
		return PathDirect
	}
	return PathRelay
}
