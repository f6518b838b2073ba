package node

import "testing"

func TestICESettings(t *testing.T) {
	if c, err := (ICESettings{}).Config(); c != nil || err != nil {
		t.Fatalf("no servers: %+v %v, want ICE off", c, err)
	}
	c, err := ICESettings{STUN: []string{"stun:25.0.0.1:3478"}, TURN: []string{"turn:25.0.0.1:3478?transport=udp"}, TURNUsername: "1:u", TURNPassword: "p"}.Config()
	if err != nil || len(c.Servers) != 2 || c.Timeout != DefaultICETimeout || c.Policy.AllowPrivate || c.Loopback {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := (ICESettings{TURN: []string{"turn:25.0.0.1:3478"}}).Config(); err == nil {
		t.Fatal("a TURN server without credentials was accepted")
	}
}
