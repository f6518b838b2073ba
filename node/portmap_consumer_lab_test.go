package node

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/natlab"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/nat/portmap"
	"github.com/openmyst/openmyst/relay"
)

// The lab test's roles run as children of the test binary inside lab
// namespaces (natlab.StartChild): TestMain dispatches on labRoleEnv.
const (
	labRoleEnv    = "NODE_LAB_ROLE" // "relay", "consumer" or "provider"
	labServersEnv = "NODE_LAB_SERVERS"
	labPublicEnv  = "NODE_LAB_PUBLIC"
	labPortMapEnv = "NODE_LAB_PORTMAP" // "1": the consumer maps its ICE port
)

const labRelaySecret = "node-lab-relay-secret-0123456789abcdef"

func TestMain(m *testing.M) {
	switch role := os.Getenv(labRoleEnv); role {
	case "":
		os.Exit(m.Run())
	default:
		if err := runLabRole(role); err != nil {
			fmt.Printf("FATAL %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// runLabRole is one lab child. The relay prints READY. A peer prints
// "OFFER <base64 json>" (the consumer first "MAPPED <external>" with
// port mapping), reads "PEER <base64 json>", runs the checks, prints
// "PATH <kind> <local> <remote>" and echoes one datagram through the
// selected pair ("ECHO"); the consumer then reads "RELEASE", gives the
// mapping up and prints "RELEASED".
func runLabRole(role string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if role == "relay" {
		s, err := relay.Start(relay.Config{UDP: ":3478", PublicIP: netip.MustParseAddr(os.Getenv(labPublicEnv)), Secret: []byte(labRelaySecret)})
		if err != nil {
			return err
		}
		defer s.Close()
		fmt.Println("READY")
		<-ctx.Done()
		return nil
	}
	var servers []ice.Server
	if err := json.Unmarshal([]byte(os.Getenv(labServersEnv)), &servers); err != nil {
		return fmt.Errorf("servers: %w", err)
	}
	cfg := ice.Config{Servers: servers, Timeout: 15 * time.Second, Logger: log}
	release := func() {}
	if role == "consumer" && os.Getenv(labPortMapEnv) == "1" {
		pm, err := openConsumerPortMap(DefaultConsumerICEPort, portmap.New(portmap.Config{Description: "openmyst lab", Logger: log}), ConsumerPortMapWait, log)
		if err != nil {
			return err
		}
		defer pm.close()
		release = pm.acquire(ctx)
		defer release()
		m, ok := pm.mapped()
		if !ok {
			return fmt.Errorf("the router did not map the ICE port within %v", ConsumerPortMapWait)
		}
		fmt.Printf("MAPPED %s\n", m.External)
		cfg.Mux = pm.mux
	}
	agent, raw, err := ice.Start(ctx, cfg, role == "consumer")
	if err != nil {
		return err
	}
	defer agent.Close()
	fmt.Printf("OFFER %s\n", base64.StdEncoding.EncodeToString(raw))
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read peer: %w", err)
	}
	b64, ok := strings.CutPrefix(strings.TrimSpace(line), "PEER ")
	if !ok {
		return fmt.Errorf("peer line %q", line)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return err
	}
	remote, _, err := ice.DecodeOffer(b, cfg.Policy)
	if err != nil {
		return err
	}
	conn, err := agent.Connect(ctx, remote)
	if err != nil {
		return err
	}
	p := agent.Path()
	fmt.Printf("PATH %s %s %s\n", p.Kind, p.Local, p.Remote)
	buf := make([]byte, 64)
	if role == "consumer" {
		for i := 0; ; i++ {
			if i == 20 {
				return fmt.Errorf("no echo through the selected pair")
			}
			if _, err := conn.Write([]byte("ping")); err != nil {
				return err
			}
			_ = conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
			if n, err := conn.Read(buf); err == nil && string(buf[:n]) == "pong" {
				break
			}
		}
		fmt.Println("ECHO")
		if line, err = in.ReadString('\n'); err != nil || strings.TrimSpace(line) != "RELEASE" {
			return fmt.Errorf("want RELEASE, read %q: %v", line, err)
		}
		release()
		fmt.Println("RELEASED")
		<-ctx.Done()
		return nil
	}
	for ctx.Err() == nil {
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := conn.Read(buf); err == nil && string(buf[:n]) == "ping" {
			if _, err := conn.Write([]byte("pong")); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestLabConsumerPortMap: a consumer behind a UPnP router (miniupnpd)
// and a provider behind a symmetric NAT cannot punch through to each
// other (the relay carries the pair), but with the consumer's ICE port
// mapped on its router (consumerPortMap, the daemon's --portmap) the
// consumer offers the mapped address as its host candidate and the
// provider's checks reach it directly. Giving the mapping up (a
// disconnect) removes it from the router.
func TestLabConsumerPortMap(t *testing.T) {
	lab := natlab.New(t)
	rl := natlab.StartChild(t, lab.Internet(), labRoleEnv+"=relay", labPublicEnv+"="+natlab.InternetGateway.String())
	rl.Expect(t, "READY", 10*time.Second)
	user, pass, err := relay.Credentials([]byte(labRelaySecret), "lab", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	gw := natlab.InternetGateway.String()
	sv, _ := json.Marshal([]ice.Server{{URL: "stun:" + gw + ":3478"}, {URL: "turn:" + gw + ":3478?transport=udp", Username: user, Password: pass}})
	port := fmt.Sprint(DefaultConsumerICEPort)
	for _, tc := range []struct {
		name    string
		portmap bool
		want    string
	}{{"without", false, ice.PathRelay}, {"with", true, ice.PathDirect}} {
		t.Run(tc.name+"-portmap", func(t *testing.T) {
			cons := lab.Site("cpm"+tc.name[:2], natlab.UPnP)
			cons.StartUPnP(t)
			prov := lab.Site("ppm"+tc.name[:2], natlab.Symmetric)
			rules := func() string {
				out, err := cons.Router.Run(t.Context(), "nft", "list", "table", "inet", "miniupnpd")
				if err != nil {
					t.Fatalf("list miniupnpd's rules: %v", err)
				}
				return out
			}
			env := []string{labServersEnv + "=" + string(sv)}
			p := natlab.StartChild(t, prov.Host.NS, append(env, labRoleEnv+"=provider")...)
			cenv := append(env, labRoleEnv+"=consumer")
			if tc.portmap {
				cenv = append(cenv, labPortMapEnv+"=1")
			}
			c := natlab.StartChild(t, cons.Host.NS, cenv...)
			defer func() {
				if t.Failed() {
					c.Stop()
					p.Stop()
					t.Logf("consumer:\n%s\nprovider:\n%s", c.Output(), p.Output())
				}
			}()
			if tc.portmap {
				want := netip.AddrPortFrom(cons.WAN, DefaultConsumerICEPort).String()
				if got := c.Expect(t, "MAPPED", 15*time.Second); got != want {
					t.Fatalf("mapped %s, want %s", got, want)
				}
				if !strings.Contains(rules(), port) {
					t.Fatalf("miniupnpd has no mapping of the ICE port:\n%s", rules())
				}
			}
			pOffer, cOffer := p.Expect(t, "OFFER", 15*time.Second), c.Expect(t, "OFFER", 15*time.Second)
			c.Send(t, "PEER %s", pOffer)
			p.Send(t, "PEER %s", cOffer)
			got := strings.Fields(c.Expect(t, "PATH", 30*time.Second))
			p.Expect(t, "PATH", 30*time.Second)
			t.Logf("path %v", got)
			if got[0] != tc.want {
				t.Fatalf("path %v, want %s", got, tc.want)
			}
			c.Expect(t, "ECHO", 10*time.Second)
			c.Send(t, "RELEASE")
			c.Expect(t, "RELEASED", 10*time.Second)
			if r := rules(); strings.Contains(r, port) {
				t.Fatalf("the mapping outlived the connection:\n%s", r)
			}
		})
	}
}
