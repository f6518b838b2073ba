package p2p

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/openmyst/openmyst/internal/natlab"
	"github.com/openmyst/openmyst/probe"
)

// The NAT lab test runs each node in a child process of the test binary
// inside its lab namespace (see natlab.Child).
const (
	labRoleEnv = "P2P_LAB_ROLE" // "boot", "provider" or "consumer"
	labBootEnv = "P2P_LAB_BOOT" // the bootstrap/relay node's multiaddr
	labEcho    = ProtocolPrefix + "/test/echo/1.0.0"
)

func runLabRole(role string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := labRole(ctx, role); err != nil {
		fmt.Printf("FATAL %v\n", err)
		return 1
	}
	return 0
}

func labRole(ctx context.Context, role string) error {
	dir, err := os.MkdirTemp("", "p2plab")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	key, err := LoadOrCreateKey(filepath.Join(dir, KeyFile))
	if err != nil {
		return err
	}
	cfg := Config{
		Key:             key,
		ListenAddrs:     []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"},
		PublicAddrsOnly: true,
	}
	if role == "boot" {
		cfg.RelayService = true
	} else {
		boot, err := ParseBootstrap([]string{os.Getenv(labBootEnv)})
		if err != nil {
			return err
		}
		cfg.Bootstrap = boot
		cfg.NAT = true
		cfg.DHTMode = DHTClient
	}
	n, err := New(cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Printf("ID %s\n", n.ID())
	// Every node checks others' reachability (the lab's internet is
	// public to the checker's address rules).
	ps, err := probe.New(probe.Config{Host: n.Host})
	if err != nil {
		return err
	}
	defer ps.Close()
	n.Host.SetStreamHandler(labEcho, func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(s, s)
	})
	if role != "boot" {
		if err := n.Bootstrap(ctx); err != nil {
			return err
		}
	}
	switch role {
	case "boot":
		fmt.Println("READY")
		<-ctx.Done()
		return nil
	case "provider":
		if sub, err := n.Host.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged)); err == nil {
			go func() {
				for e := range sub.Out() {
					fmt.Fprintf(os.Stderr, "reachability %v\n", e.(event.EvtLocalReachabilityChanged).Reachability)
				}
			}()
			defer sub.Close()
		}
		// Wait for a circuit address: AutoNAT found the node private and
		// it holds a reservation on the relay.
		for {
			var circuits []string
			for _, a := range n.Host.Addrs() {
				if isCircuit(a) {
					circuits = append(circuits, a.String())
				}
			}
			if len(circuits) > 0 {
				fmt.Printf("CIRCUIT %s\n", strings.Join(circuits, ","))
				fmt.Printf("ADDRS %s\n", joinAddrs(n.Host.Addrs()))
				st := n.NATState()
				fmt.Printf("NATSTATE %s relayed=%d\n", ReachabilityName(st.Reachability), len(st.Relayed()))
				// The relay node checks this node on a fresh connection:
				// only through the relay, as it advertises nothing else.
				rep, err := ps.CheckSelf(ctx, 1)
				if err != nil {
					fmt.Printf("PROBE error %v\n", err)
				} else {
					r := rep.Results[0]
					fmt.Printf("PROBE %d/%d path=%s err=%s\n", rep.Reachable, rep.Asked, r.Path, r.Error)
				}
				<-ctx.Done()
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	// consumer: DIAL <id> <addr,addr>
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return err
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "DIAL" {
		return fmt.Errorf("dial line %q", line)
	}
	id, err := peer.Decode(f[1])
	if err != nil {
		return err
	}
	var addrs []ma.Multiaddr
	for _, s := range strings.Split(f[2], ",") {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return err
		}
		addrs = append(addrs, a)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := n.Host.Connect(cctx, peer.AddrInfo{ID: id, Addrs: addrs}); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	s, err := n.Host.NewStream(network.WithAllowLimitedConn(cctx, "lab"), id, labEcho)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	if _, err := s.Write([]byte("ping")); err != nil {
		return err
	}
	_ = s.CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "ping" {
		return fmt.Errorf("echo %q: %v", got, err)
	}
	fmt.Printf("ECHO %s\n", s.Conn().RemoteMultiaddr())
	// DCUtR upgrades the relayed connection to a direct one.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range n.Host.Network().ConnsToPeer(id) {
			if !c.Stat().Limited && !isCircuit(c.RemoteMultiaddr()) {
				fmt.Printf("DIRECT %s\n", c.RemoteMultiaddr())
				<-ctx.Done()
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Println("NODIRECT")
	<-ctx.Done()
	return nil
}

func joinAddrs(a []ma.Multiaddr) string {
	s := make([]string, len(a))
	for i, x := range a {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

// TestNATControlPath: a provider behind a home NAT with no open port is
// reached over libp2p by a consumer behind another NAT. AutoNAT (answered
// by the public bootstrap node) finds the provider private, it takes a
// circuit relay v2 reservation on the bootstrap node and advertises only
// the circuit address (no private or loopback ones), the consumer reaches
// it through the relay, and DCUtR upgrades the connection to a direct one.
func TestNATControlPath(t *testing.T) {
	lab := natlab.New(t)
	bootHost := lab.PublicHost("boot")
	boot := natlab.StartChild(t, bootHost.NS, labRoleEnv+"=boot")
	bootAddr := fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", bootHost.Addr, boot.Expect(t, "ID", 10*time.Second))
	boot.Expect(t, "READY", 10*time.Second)

	provSite := lab.Site("pp", natlab.EndpointIndependent)
	consSite := lab.Site("pc", natlab.EndpointIndependent)
	prov := natlab.StartChild(t, provSite.Host.NS, labRoleEnv+"=provider", labBootEnv+"="+bootAddr)
	provID := prov.Expect(t, "ID", 10*time.Second)
	cons := natlab.StartChild(t, consSite.Host.NS, labRoleEnv+"=consumer", labBootEnv+"="+bootAddr)
	cons.Expect(t, "ID", 10*time.Second)

	start := time.Now()
	prov.Expect(t, "CIRCUIT", 90*time.Second)
	addrs := prov.Expect(t, "ADDRS", time.Second)
	t.Logf("provider private after %v; advertises %s", time.Since(start).Round(time.Millisecond), addrs)
	for _, a := range strings.Split(addrs, ",") {
		if strings.Contains(a, "/ip4/192.168.") || strings.Contains(a, "/ip4/127.") {
			t.Errorf("the provider advertises a private address %s", a)
		}
	}
	if st := prov.Expect(t, "NATSTATE", time.Second); !strings.HasPrefix(st, "private relayed=") || st == "private relayed=0" {
		t.Errorf("the provider's NAT state: %s, want private with its relay addresses", st)
	}
	// The relay/bootstrap node is the one checker the provider knows: it
	// reaches the provider on a fresh connection through its circuit.
	if pr := prov.Expect(t, "PROBE", 30*time.Second); pr != "1/1 path=relay err=" {
		t.Errorf("peer reachability check: %s, want reachable from 1 of 1 over the relay", pr)
	}
	cons.Send(t, "DIAL %s %s", provID, addrs)
	via := cons.Expect(t, "ECHO", 30*time.Second)
	t.Logf("echo via %s", via)
	direct := cons.Expect(t, "DIRECT", 40*time.Second)
	if !strings.Contains(direct, provSite.WAN.String()) {
		t.Fatalf("direct connection to %s, want the provider's public address %s", direct, provSite.WAN)
	}
	t.Logf("DCUtR: direct to %s", direct)
}
