package connbind_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/connbind"
	"github.com/openmyst/openmyst/tunnel/connbind/connbindtest"
)

type node struct {
	key  tunnel.PrivateKey
	dev  *device.Device
	net  *netstack.Net
	addr netip.Addr
}

func newNode(t *testing.T, addr string, bind conn.Bind) *node {
	t.Helper()
	key, err := tunnel.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr(addr)
	tdev, tnet, err := netstack.CreateNetTUN([]netip.Addr{a}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	dev := device.NewDevice(tdev, bind, device.NewLogger(device.LogLevelSilent, ""))
	t.Cleanup(dev.Close)
	if err := dev.IpcSet("private_key=" + hex.EncodeToString(key[:]) + "\n"); err != nil {
		t.Fatal(err)
	}
	return &node{key: key, dev: dev, net: tnet, addr: a}
}

// peer adds other as n's peer at endpoint ("": learnt from its packets).
// An initiating peer gets a persistent keepalive, so n starts the
// handshake as soon as it is up (a consumer); the other side only answers
// (a provider's exit). Both sides initiating at once crossed their
// handshakes: each answered the other's initiation, which discarded its
// own, both responses were dropped and the tunnel came up only with
// WireGuard's retry 5 s later (twice in a row on a loaded machine: the
// 10 s round-trip timeout this test used to hit).
func (n *node) peer(t *testing.T, other *node, endpoint string, initiate bool) {
	t.Helper()
	pub := other.key.PublicKey()
	cfg := fmt.Sprintf("public_key=%s\nallowed_ip=%s/32\n", hex.EncodeToString(pub[:]), other.addr)
	if endpoint != "" {
		cfg += "endpoint=" + endpoint + "\n"
	}
	if initiate {
		cfg += "persistent_keepalive_interval=1\n"
	}
	if err := n.dev.IpcSet(cfg); err != nil {
		t.Fatal(err)
	}
	if err := n.dev.Up(); err != nil {
		t.Fatal(err)
	}
}

// echo serves an echo over TCP on the node's tunnel address.
func (n *node) echo(t *testing.T) {
	t.Helper()
	ln, err := n.net.ListenTCP(&net.TCPAddr{IP: n.addr.AsSlice(), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
}

// roundTripWait bounds a round trip: the first one needs a handshake, and
// WireGuard resends a lost initiation only after 5 s (plus jitter), so the
// wait covers the handshake timeout the tunnels use (three initiations)
// plus the echo (10 s covered one resend only, and failed once on a busy
// CI machine).
const roundTripWait = tunnel.DefaultHandshakeTimeout + 5*time.Second

func roundTrip(t *testing.T, from, to *node, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), roundTripWait)
	defer cancel()
	c, err := from.net.DialContext(ctx, "tcp4", netip.AddrPortFrom(to.addr, 7).String())
	if err != nil {
		t.Fatalf("%s -> %s: %v", from.addr, to.addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(roundTripWait))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("%s -> %s: echo %q, %v", from.addr, to.addr, buf, err)
	}
}

// TestBindServesConnectionsAndUDP: one WireGuard device (the exit) talks
// to one peer over an added connection and to another over its ordinary
// UDP socket, at the same time.
func TestBindServesConnectionsAndUDP(t *testing.T) {
	exitBind := connbind.New(conn.NewDefaultBind())
	exit := newNode(t, "10.9.0.1", exitBind)
	consBind := connbind.New(nil)
	overConn := newNode(t, "10.9.0.2", consBind)
	overUDP := newNode(t, "10.9.0.3", conn.NewDefaultBind())
	exit.echo(t)

	ca, cb := connbindtest.UDPPair(t)
	epExit, err := exitBind.Add("consumer-a", ca)
	if err != nil {
		t.Fatal(err)
	}
	epCons, err := consBind.Add("provider", cb)
	if err != nil {
		t.Fatal(err)
	}
	exit.peer(t, overConn, epExit, false)
	exit.peer(t, overUDP, "", false)
	overConn.peer(t, exit, epCons, true)
	overUDP.peer(t, exit, fmt.Sprintf("127.0.0.1:%d", listenPort(t, exit.dev)), true)

	start := time.Now()
	roundTrip(t, overConn, exit, "over a connection")
	t.Logf("first round trip over the connection: %v", time.Since(start))
	roundTrip(t, overUDP, exit, "over UDP")
	roundTrip(t, overConn, exit, "and again over the connection")

	// A removed connection carries nothing more.
	exitBind.Remove("consumer-a")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if c, err := overConn.net.DialContext(ctx, "tcp4", "10.9.0.1:7"); err == nil {
		c.Close()
		t.Fatal("connected through a removed connection")
	}
	roundTrip(t, overUDP, exit, "UDP still works")
}

func TestParseEndpoint(t *testing.T) {
	b := connbind.New(conn.NewDefaultBind())
	if ep, err := b.ParseEndpoint("conn:abc"); err != nil || ep.DstToString() != "conn:abc" {
		t.Fatalf("conn endpoint: %v %v", ep, err)
	}
	if ep, err := b.ParseEndpoint("127.0.0.1:51820"); err != nil || ep.DstToString() != "127.0.0.1:51820" {
		t.Fatalf("UDP endpoint through the inner bind: %v %v", ep, err)
	}
	for _, bad := range []string{"conn:", "nonsense"} {
		if _, err := connbind.New(nil).ParseEndpoint(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
	for _, bad := range []string{"", "a b", "a\nb", "k=v"} {
		if _, err := b.Add(bad, nil); err == nil {
			t.Errorf("added id %q", bad)
		}
	}
	gone, _ := b.ParseEndpoint("conn:gone")
	if err := b.Send([][]byte{{1}}, gone); err == nil {
		t.Error("sent to an unknown connection")
	}
}

func listenPort(t *testing.T, dev *device.Device) int {
	t.Helper()
	cfg, err := dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(cfg, "\n") {
		if v, ok := strings.CutPrefix(l, "listen_port="); ok {
			p, err := strconv.Atoi(v)
			if err == nil && p > 0 {
				return p
			}
		}
	}
	t.Fatalf("no listen_port in %q", cfg)
	return 0
}
