package node

import (
	"os"
	"path/filepath"
	"testing"
)

func TestICESettings(t *testing.T) {
	if c, err := (ICESettings{}).Config(); c != nil || err != nil {
		t.Fatalf("no servers: %+v %v, want ICE off", c, err)
	}
	creds := filepath.Join(t.TempDir(), "turn")
	if err := os.WriteFile(creds, []byte("1700000000:node:secretpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ICESettings{Servers: []string{"stun:25.0.0.1:3478", "turn:25.0.0.1:3478?transport=udp"}, TURNCredentialsFile: creds}.Config()
	if err != nil || len(c.Servers) != 2 || c.Timeout != DefaultICETimeout || c.Policy.AllowPrivate || c.Loopback {
		t.Fatalf("%+v %v", c, err)
	}
	if c.Servers[1].Username != "1700000000:node" || c.Servers[1].Password != "secretpw" {
		t.Fatalf("TURN credentials %q %q", c.Servers[1].Username, c.Servers[1].Password)
	}
	// Birthday punching is on for a real network, off on a loopback
	// devnet (its nodes share one host: nothing to punch).
	if c.Punch == nil {
		t.Fatal("punching is off on a network")
	}
	if d, err := (ICESettings{Servers: []string{"stun:127.0.0.1:3478"}}).Config(); err != nil || d.Punch != nil {
		t.Fatalf("loopback devnet: punch %+v, %v", d.Punch, err)
	}
	if _, err := (ICESettings{Servers: []string{"turn:25.0.0.1:3478"}}).Config(); err == nil {
		t.Fatal("a TURN server without credentials was accepted")
	}
}

// TestICESettingsScope: private and loopback candidates are allowed only
// when every server is on such an address (a devnet or LAN lab).
func TestICESettingsScope(t *testing.T) {
	for _, c := range []struct {
		servers           []string
		loopback, private bool
	}{
		{[]string{"stun:127.0.0.1:40000"}, true, true},
		{[]string{"stun:127.0.0.1:40000", "stun:[::1]:3478"}, true, true},
		{[]string{"stun:10.77.0.5:3478", "stun:127.0.0.1:3478"}, false, true},
		{[]string{"stun:192.168.1.2:3478"}, false, true},
		{[]string{"stun:10.77.0.5:3478", "stun:25.0.0.1:3478"}, false, false},
		{[]string{"stun:stun.example.org:3478"}, false, false},
		{[]string{"stun:localhost:3478"}, false, false},
	} {
		cfg, err := ICESettings{Servers: c.servers}.Config()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Loopback != c.loopback || cfg.Policy.AllowPrivate != c.private {
			t.Errorf("%v: loopback %v private %v, want %v %v", c.servers, cfg.Loopback, cfg.Policy.AllowPrivate, c.loopback, c.private)
		}
	}
}
