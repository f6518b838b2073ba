package ice

import (
	"slices"
	"testing"
)

// TestAgentURLs: pion gets every TURN URL, and the stun: URLs only where
// no TURN server listens on UDP (each URL is one more server-reflexive
// socket and source of checks); credentials go with their URL.
func TestAgentURLs(t *testing.T) {
	turnUDP := Server{URL: "turn:25.0.0.1:3478?transport=udp", Username: "u", Password: "p"}
	turnTCP := Server{URL: "turn:25.0.0.1:3478?transport=tcp", Username: "u", Password: "p"}
	turnTLS := Server{URL: "turns:relay.example:5349", Username: "u", Password: "p"}
	stun1, stun2 := Server{URL: "stun:25.0.0.1:3478"}, Server{URL: "stun:25.0.0.1:3479"}
	for _, tc := range []struct {
		name    string
		servers []Server
		want    []string // the URLs pion gets
	}{
		{"the lab's: two STUN, TURN over UDP and TCP", []Server{stun1, stun2, turnUDP, turnTCP}, []string{turnUDP.URL, turnTCP.URL}},
		{"TURN over TCP only", []Server{stun1, turnTCP}, []string{stun1.URL, turnTCP.URL}},
		{"TURN over TLS only", []Server{turnTLS, stun2}, []string{"turns:relay.example:5349?transport=tcp", stun2.URL}},
		{"STUN only", []Server{stun1, stun2}, []string{stun1.URL, stun2.URL}},
		{"TURN over UDP only", []Server{turnUDP}, []string{turnUDP.URL}},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			urls, err := agentURLs(tc.servers)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range urls {
				got = append(got, u.String())
				if u.Scheme.String() != "stun" && (u.Username != "u" || u.Password != "p") {
					t.Errorf("%s lost its credentials", u)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("pion gets %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := agentURLs([]Server{stun1, {URL: "turn:"}}); err == nil {
		t.Fatal("a bad URL was accepted")
	}
}
