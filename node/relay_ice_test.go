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
	if _, err := (ICESettings{Servers: []string{"turn:25.0.0.1:3478"}}).Config(); err == nil {
		t.Fatal("a TURN server without credentials was accepted")
	}
}
