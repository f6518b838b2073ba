package ice

import (
	"bufio"
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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pion "github.com/pion/ice/v4"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/openmyst/openmyst/internal/natlab"
	"github.com/openmyst/openmyst/nat/punch"
	"github.com/openmyst/openmyst/relay"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/connbind"
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
	childBulkEnv    = "ICE_LAB_BULK" // bytes the consumer also fetches, timed
	// childRelayBandwidthEnv sets the relay's per-allocation cap (bytes/s).
	childRelayBandwidthEnv = "ICE_LAB_RELAY_BANDWIDTH"
	// childMuxEnv "LOCAL:PORT EXTERNAL" gives the provider a Mux on a
	// forwarded port announced at EXTERNAL.
	childMuxEnv = "ICE_LAB_MUX"
	// childNoPunchEnv "1" turns punching (Config.Punch) off.
	childNoPunchEnv = "ICE_LAB_NO_PUNCH"
	// childPunchPortsEnv "MIN-MAX" is the range an easy side guesses the
	// hard side's ports in (punch.Config.MinPort/MaxPort).
	childPunchPortsEnv = "ICE_LAB_PUNCH_PORTS"
	// childGatherTimeoutEnv sets Config.GatherTimeout (a Go duration).
	childGatherTimeoutEnv = "ICE_LAB_GATHER_TIMEOUT"
	// labSTUN2Port is the lab relay's alternate STUN port
	// (relay.Config.STUNAlt): with 3478, two destinations that tell a
	// NAT's mapping behaviour (nat/punch).
	labSTUN2Port = 3479
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
	bw, _ := strconv.Atoi(os.Getenv(childRelayBandwidthEnv))
	s, err := relay.Start(relay.Config{
		UDP: ":3478", TCP: ":3478", STUNAlt: fmt.Sprintf(":%d", labSTUN2Port),
		PublicIP:  netip.MustParseAddr(os.Getenv(childPublicEnv)),
		Secret:    []byte(labSecret),
		Bandwidth: bw,
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
	cfg := Config{Servers: servers, RelayOnly: os.Getenv(childRelayOnly) == "1", Timeout: 20 * time.Second}
	if v := os.Getenv(childGatherTimeoutEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s: %w", childGatherTimeoutEnv, err)
		}
		cfg.GatherTimeout = d
	}
	if os.Getenv(childNoPunchEnv) != "1" {
		cfg.Punch = &punch.Config{}
		if lo, hi, ok := strings.Cut(os.Getenv(childPunchPortsEnv), "-"); ok {
			l, _ := strconv.ParseUint(lo, 10, 16)
			h, _ := strconv.ParseUint(hi, 10, 16)
			cfg.Punch.MinPort, cfg.Punch.MaxPort = uint16(l), uint16(h)
		}
	}
	if m := strings.Fields(os.Getenv(childMuxEnv)); len(m) == 2 {
		mux, err := ListenMux(netip.MustParseAddrPort(m[0]), netip.MustParseAddr(m[1]))
		if err != nil {
			return err
		}
		defer mux.Close()
		cfg.Mux = mux
	}
	agent, err := NewAgent(cfg, role == "consumer")
	if err != nil {
		return err
	}
	defer agent.Close()
	// Diagnostics on stderr, shown when the parent test fails.
	_ = agent.agent.OnSelectedCandidatePairChange(func(l, r pion.Candidate) {
		fmt.Fprintf(os.Stderr, "%s: %s selected %s -> %s\n", role, time.Now().Format("15:04:05.000"), l, r)
	})
	_ = agent.agent.OnConnectionStateChange(func(s pion.ConnectionState) {
		fmt.Fprintf(os.Stderr, "%s: %s state %s\n", role, time.Now().Format("15:04:05.000"), s)
	})
	defer func() {
		ls, _ := agent.agent.GetLocalCandidates()
		rs, _ := agent.agent.GetRemoteCandidates()
		for _, c := range append(ls, rs...) {
			fmt.Fprintf(os.Stderr, "%s: cand %s %s\n", role, c.ID(), c)
		}
		for _, st := range agent.agent.GetCandidatePairsStats() {
			if st.RequestsSent+st.RequestsReceived+st.ResponsesReceived > 0 || st.Nominated {
				fmt.Fprintf(os.Stderr, "%s: %s pair %s->%s state=%s nom=%v sent=%d recv=%d req=%d/%d resp=%d/%d\n", role, time.Now().Format("15:04:05.000"), st.LocalCandidateID, st.RemoteCandidateID, st.State, st.Nominated, st.BytesSent, st.BytesReceived, st.RequestsSent, st.RequestsReceived, st.ResponsesSent, st.ResponsesReceived)
			}
		}
	}()
	t0 := time.Now() // the session's start, for connect → first byte
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	offer, err := agent.Gather(gctx)
	cancel()
	if err != nil {
		return err
	}
	fmt.Printf("GATHERED %d\n", time.Since(t0).Microseconds())
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
	checks := time.Now()
	conn, err := agent.Connect(ctx, remote)
	if err != nil {
		return err
	}
	p := agent.Path()
	fmt.Printf("PATH %s %s %s %s %d\n", p.Kind, p.Local, p.Remote, p.RemoteAddr, time.Since(checks).Microseconds())

	bind := connbind.New(nil)
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
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n, err := strconv.Atoi(r.URL.Query().Get("bulk")); err == nil && n > 0 {
				chunk := make([]byte, 64<<10)
				for n > 0 {
					k := min(n, len(chunk))
					if _, err := w.Write(chunk[:k]); err != nil {
						return
					}
					n -= k
				}
				return
			}
			_, _ = w.Write(body)
		})}
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
		first := make([]byte, 1)
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			resp.Body.Close()
			return fmt.Errorf("fetch: %w", err)
		}
		fmt.Printf("FIRSTBYTE %d\n", time.Since(t0).Microseconds())
		h := sha256.New()
		h.Write(first)
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		fmt.Printf("FETCHED %d %x\n", n+1, h.Sum(nil))
		if bulk, _ := strconv.Atoi(os.Getenv(childBulkEnv)); bulk > 0 {
			start := time.Now()
			resp, err := client.Get(fmt.Sprintf("http://%s:8080/?bulk=%d", providerTunnelIP, bulk))
			if err != nil {
				return fmt.Errorf("bulk: %w", err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != int64(bulk) {
				return fmt.Errorf("bulk: %d of %d bytes: %v", n, bulk, err)
			}
			fmt.Printf("BULK %d %d\n", n, time.Since(start).Microseconds())
		}
		return nil
	}
	return fmt.Errorf("no HTTP through the tunnel: %v", lastErr)
}

// pairResult is what one lab session measured.
type pairResult struct {
	path      Path
	toPath    time.Duration // the consumer's Connect: offers in → path selected
	provPath  time.Duration // the provider's Connect
	firstByte time.Duration // session start → first byte through the tunnel
	bulkBytes int64
	bulkTime  time.Duration
}

// labPair runs one consumer × provider session over ICE in the NAT lab and
// returns the path the consumer used. bulk > 0 also times a transfer of
// that many bytes.
func labPair(t testing.TB, lab *natlab.Lab, servers []Server, cons, prov *natlab.Site, relayOnly bool, bulk int) pairResult {
	t.Helper()
	return labPairLate(t, lab, servers, cons, prov, relayOnly, bulk, 0)
}

// labPairLate is labPair where the provider gets the consumer's offer
// late: its checks start that long after the consumer's, as when the
// offers cross a slow signalling path or a busy provider.
func labPairLate(t testing.TB, lab *natlab.Lab, servers []Server, cons, prov *natlab.Site, relayOnly bool, bulk int, late time.Duration, provEnv ...string) pairResult {
	t.Helper()
	sv, _ := json.Marshal(servers)
	env := []string{childServersEnv + "=" + string(sv)}
	if relayOnly {
		env = append(env, childRelayOnly+"=1")
	}
	if bulk > 0 {
		env = append(env, fmt.Sprintf("%s=%d", childBulkEnv, bulk))
	}
	p := natlab.StartChild(t, prov.Host.NS, append(append(env, provEnv...), childRoleEnv+"=provider")...)
	defer p.Stop()
	defer func() {
		if t.Failed() {
			p.Stop()
			t.Logf("provider:\n%s", p.Output())
		}
	}()
	c := natlab.StartChild(t, cons.Host.NS, append(env, childRoleEnv+"=consumer")...)
	defer c.Stop()
	pOffer, pKey := p.Expect(t, "OFFER", 15*time.Second), p.Expect(t, "KEY", time.Second)
	cOffer, cKey := c.Expect(t, "OFFER", 15*time.Second), c.Expect(t, "KEY", time.Second)
	c.Send(t, "PEER %s %s", pOffer, pKey)
	time.Sleep(late)
	p.Send(t, "PEER %s %s", cOffer, cKey)
	f := strings.Fields(c.Expect(t, "PATH", 30*time.Second))
	pf := strings.Fields(p.Expect(t, "PATH", 30*time.Second))
	p.Expect(t, "SERVING", 10*time.Second)
	fb, _ := strconv.ParseInt(c.Expect(t, "FIRSTBYTE", 30*time.Second), 10, 64)
	got := strings.Fields(c.Expect(t, "FETCHED", 30*time.Second))
	sum := sha256.Sum256(payload())
	if len(got) != 2 || got[0] != fmt.Sprint(payloadSize) || got[1] != hex.EncodeToString(sum[:]) {
		t.Fatalf("fetched %v, want %d bytes with sha256 %x", got, payloadSize, sum)
	}
	r := pairResult{path: Path{Kind: f[0], Local: f[1], Remote: f[2]}, firstByte: time.Duration(fb) * time.Microsecond}
	if len(f) >= 4 {
		r.path.RemoteAddr, _ = netip.ParseAddrPort(f[3])
	}
	if len(f) >= 5 {
		us, _ := strconv.ParseInt(f[4], 10, 64)
		r.toPath = time.Duration(us) * time.Microsecond
	}
	if len(pf) >= 5 {
		us, _ := strconv.ParseInt(pf[4], 10, 64)
		r.provPath = time.Duration(us) * time.Microsecond
	}
	if bulk > 0 {
		b := strings.Fields(c.Expect(t, "BULK", 120*time.Second))
		r.bulkBytes, _ = strconv.ParseInt(b[0], 10, 64)
		us, _ := strconv.ParseInt(b[1], 10, 64)
		r.bulkTime = time.Duration(us) * time.Microsecond
	}
	return r
}

// startLabRelay runs the relay role in the lab's internet namespace and
// returns the STUN and TURN servers to use, and the relay's process.
func startLabRelay(t testing.TB, lab *natlab.Lab, env ...string) ([]Server, *natlab.Child) {
	t.Helper()
	rl := natlab.StartChild(t, lab.Internet(), append(env, childRoleEnv+"=relay", childPublicEnv+"="+natlab.InternetGateway.String())...)
	rl.Expect(t, "READY", 10*time.Second)
	user, pass, err := relay.Credentials([]byte(labSecret), "lab", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	gw := natlab.InternetGateway.String()
	servers := []Server{
		{URL: "stun:" + gw + ":3478"},
		{URL: fmt.Sprintf("stun:%s:%d", gw, labSTUN2Port)},
		{URL: "turn:" + gw + ":3478?transport=udp", Username: user, Password: pass},
		{URL: "turn:" + gw + ":3478?transport=tcp", Username: user, Password: pass},
	}
	return servers, rl
}

// TestLabPairs connects a consumer and a provider over ICE + WireGuard
// behind every combination of NATs in the lab, fetches a file through the
// tunnel whose bytes must match, and checks which path was chosen: direct
// wherever hole punching can work, through the relay elsewhere.
func TestLabPairs(t *testing.T) {
	lab := natlab.New(t)
	servers, rl := startLabRelay(t, lab)
	t.Cleanup(func() {
		if t.Failed() {
			rl.Stop()
			t.Logf("relay:\n%s", rl.Output())
		}
	})
	// Forwarded and UPnP routers behave as EndpointIndependent ones
	// unless a node offers its forwarded or mapped port as a candidate
	// (Mux: TestLabMuxForwardedPort here, every kind with myst processes
	// in cmd/myst TestNATLabPaidSession), so they are left out of this
	// matrix rather than counted twice.
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
				r := labPair(t, lab, servers, cons, prov, false, 0)
				path := r.path
				want := expectedPath(ck, pk)
				t.Logf("path %s (%s/%s) in %v, checks %v", path.Kind, path.Local, path.Remote, time.Since(start).Round(time.Millisecond), r.toPath.Round(time.Millisecond))
				if path.Kind != want {
					t.Errorf("consumer %v, provider %v: path %s (%s/%s), want %s", ck, pk, path.Kind, path.Local, path.Remote, want)
				}
				// A pair that ICE alone connects only through the relay
				// must be punched; one that ICE connects directly may
				// take either direct path (the first one in wins).
				punched := path.Local == CandidatePunched
				if mustPunch := needsPunch(ck, pk) && expectedICEPath(ck, pk) == PathRelay; punched && !needsPunch(ck, pk) || mustPunch && !punched {
					t.Errorf("consumer %v, provider %v: path %s/%s, punched %v, want %v", ck, pk, path.Local, path.Remote, punched, needsPunch(ck, pk))
				}
				// A punched path goes straight to the provider's router,
				// not to the relay.
				if path.Local == CandidatePunched && path.RemoteAddr.Addr() != prov.WAN {
					t.Errorf("consumer %v, provider %v: punched path to %v, want the provider's public address %v", ck, pk, path.RemoteAddr, prov.WAN)
				}
			})
		}
	}
}

// TestLabWithoutPunch: without nat/punch, a symmetric consumer and an
// endpoint-independent provider (a port-restricted cone) only get the
// relay — what every such pair had before punching, and what it falls
// back to when punching fails.
func TestLabWithoutPunch(t *testing.T) {
	lab := natlab.New(t)
	servers, _ := startLabRelay(t, lab)
	ck, pk := natlab.Symmetric, natlab.EndpointIndependent
	cons, prov := lab.Site("nc", ck), lab.Site("np", pk)
	r := labPairLate(t, lab, servers, cons, prov, false, 0, 0, childNoPunchEnv+"=1")
	if want := expectedICEPath(ck, pk); r.path.Kind != want || want != PathRelay {
		t.Fatalf("path %s (%s/%s), want %s", r.path.Kind, r.path.Local, r.path.Remote, want)
	}
}

// TestLabPunchFails: when punching finds no pair (here the easy side,
// the provider, guesses only ports 1–100, where the symmetric router
// never maps), both sides fall back to ICE's pair, the relay, and the
// tunnel works over it — without waiting out the punch's time limit:
// the consumer abandons the punch once ICE has its pair and the
// guessing time is over, the provider once the consumer's first
// datagram comes over ICE's pair.
func TestLabPunchFails(t *testing.T) {
	lab := natlab.New(t)
	servers, _ := startLabRelay(t, lab)
	cons, prov := lab.Site("fc", natlab.Symmetric), lab.Site("fp", natlab.EndpointIndependent)
	start := time.Now()
	r := labPairLate(t, lab, servers, cons, prov, false, 0, 0, childPunchPortsEnv+"=1-100")
	t.Logf("path %s (%s/%s) in %v, checks %v (provider %v)", r.path.Kind, r.path.Local, r.path.Remote, time.Since(start).Round(time.Millisecond), r.toPath.Round(time.Millisecond), r.provPath.Round(time.Millisecond))
	if r.path.Kind != PathRelay {
		t.Fatalf("path %s (%s/%s), want the relay after the punch failed", r.path.Kind, r.path.Local, r.path.Remote)
	}
	if r.toPath >= punch.DefaultTimeout || r.provPath >= punch.DefaultTimeout {
		t.Fatalf("the consumer's checks took %v, the provider's %v: the session waited out the punch's time limit (%v)", r.toPath, r.provPath, punch.DefaultTimeout)
	}
}

// TestLabLateAnswer: the provider starts its checks well after the
// consumer (the controlling side). The consumer must keep checking its
// pairs until the provider answers instead of giving them up as failed
// (it sends no check back when the provider's checks arrive, so a pair
// given up is never nominated), both for a direct path and for the
// relayed one of the CI failure (symmetric consumer, EIM provider); and
// for the pairs whose offers leave no direct pair (a UDP-blocked side, two
// symmetric NATs), which select the first working pair without a
// nomination: it must wait for the late side too.
func TestLabLateAnswer(t *testing.T) {
	lab := natlab.New(t)
	servers, _ := startLabRelay(t, lab)
	for _, k := range [][2]natlab.Kind{{natlab.Public, natlab.Public}, {natlab.Symmetric, natlab.EndpointIndependent},
		{natlab.UDPBlocked, natlab.EndpointIndependent}, {natlab.Symmetric, natlab.Symmetric}} {
		t.Run(k[0].String()+"-"+k[1].String(), func(t *testing.T) {
			cons, prov := lab.Site("lc"+k[0].String()[:3], k[0]), lab.Site("lp"+k[1].String()[:3], k[1])
			path := labPairLate(t, lab, servers, cons, prov, false, 0, 1500*time.Millisecond).path
			if want := expectedPath(k[0], k[1]); path.Kind != want {
				t.Errorf("path %s (%s/%s), want %s", path.Kind, path.Local, path.Remote, want)
			}
		})
	}
}

// expectedPath is the path ICE (with punching) must find between a
// consumer behind c and a provider behind p: direct unless both sides
// are symmetric or UDP is blocked.
func expectedPath(c, p natlab.Kind) string {
	if c == natlab.UDPBlocked || p == natlab.UDPBlocked {
		return PathRelay // TURN over TCP
	}
	if c == natlab.Symmetric && p == natlab.Symmetric {
		return PathRelay
	}
	return PathDirect
}

// needsPunch reports whether the pair's direct path must be a punched one
// (nat/punch): a symmetric side and one whose STUN mapping is
// endpoint-independent. A public side has no mapping to punch (ICE
// reaches it directly).
func needsPunch(c, p natlab.Kind) bool {
	easy := func(k natlab.Kind) bool {
		return k == natlab.EndpointIndependent || k == natlab.FullCone || k == natlab.DoubleNAT
	}
	return (c == natlab.Symmetric && easy(p)) || (p == natlab.Symmetric && easy(c))
}

// expectedICEPath is the path ICE alone (no punching) finds.
func expectedICEPath(c, p natlab.Kind) string {
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
