package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v4"

	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/nat/netcheck"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/relay"
)

// TestRelayCommand runs `myst relay` as its own process on loopback (a
// devnet relay), takes credentials from `myst relay credentials`, and
// relays a datagram through a TURN allocation; its alternate STUN port
// answers Binding requests.
func TestRelayCommand(t *testing.T) {
	dd := t.TempDir()
	cmd, lines := mysttest.Start(t, mysttest.Stdout, nil, "--data-dir", dd, "relay",
		"--relay.udp", "127.0.0.1:0", "--relay.tcp", "127.0.0.1:0", "--relay.stun-alt", "127.0.0.1:0",
		"--relay.public-ip", "127.0.0.1", "--relay.allow-private")
	defer mysttest.Stop(t, cmd, lines)
	var seen []string
	mysttest.WaitLine(t, lines, "relay running", &seen)
	udpLine := mysttest.WaitLine(t, lines, "stun/turn udp:", &seen)
	server := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(udpLine), "stun/turn udp:"))
	altLine := mysttest.WaitLine(t, lines, "stun alt udp:", &seen)
	alt := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(altLine), "stun alt udp:"))
	if alt == server || !strings.HasPrefix(alt, "127.0.0.1:") {
		t.Fatalf("alternate STUN port %q (udp %q)", alt, server)
	}

	st, err := os.Stat(filepath.Join(dd, "relay", node.RelaySecretFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("relay secret: %v, mode %v", err, st.Mode().Perm())
	}
	out, err := runCLI(t, dd, "relay", "credentials", "--user", "alice", "--ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	var user, pass string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "username: "); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(l, "password: "); ok {
			pass = v
		}
	}
	if !strings.HasSuffix(user, ":alice") || pass == "" {
		t.Fatalf("credentials output:\n%s", out)
	}

	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: server, TURNServerAddr: server, Username: user, Password: pass,
		Realm: relay.DefaultRealm, Conn: pc, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relayed, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate with the command's credentials: %v", err)
	}
	// Both STUN ports answer one socket (the mapping check).
	r, err := netcheck.Check(context.Background(), netcheck.Config{Servers: []string{server, alt}, AllowPrivate: true, Listen: "127.0.0.1:0", Timeout: 5 * time.Second})
	if err != nil || len(r.Answers) != 2 || !r.Answers[0].Mapped.IsValid() || !r.Answers[1].Mapped.IsValid() {
		t.Fatalf("STUN on the UDP and the alternate port: %+v %v", r.Answers, err)
	}
	defer relayed.Close()
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := relayed.WriteTo([]byte("ciphertext"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, from, err := peer.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("ciphertext")) {
		t.Fatalf("relayed datagram: %q %v", buf[:n], err)
	}
	if from.String() != relayed.LocalAddr().String() {
		t.Fatalf("datagram from %v, want the allocation %v", from, relayed.LocalAddr())
	}
}

// TestRelayRefusesPrivatePublicIP: outside a devnet the relay's public
// address must be public.
func TestRelayRefusesPrivatePublicIP(t *testing.T) {
	dd := t.TempDir()
	_, err := runCLI(t, dd, "relay", "--relay.udp", "127.0.0.1:0", "--relay.tcp", "", "--relay.stun-alt", "", "--relay.public-ip", "192.168.1.10")
	if err == nil || !strings.Contains(err.Error(), "not a public address") {
		t.Fatalf("error %v, want a refusal of the private address", err)
	}
	if err := os.WriteFile(filepath.Join(dd, "relay.secret"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := node.RelayCredentials(dd, "a", time.Hour); err == nil {
		t.Fatal("credentials from a world-readable, short secret")
	}
}
