package tequilapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

type fakeNAT struct {
	st    NATStatusDTO
	check PeerCheckDTO
	err   error
}

func (f *fakeNAT) NATStatus(context.Context) (NATStatusDTO, error) { return f.st, nil }
func (f *fakeNAT) CheckReachability(context.Context) (PeerCheckDTO, error) {
	return f.check, f.err
}

func testNATStatus() NATStatusDTO {
	return NATStatusDTO{
		Reachability: "private", ReachabilitySince: "2026-12-03T12:00:00Z", Access: AccessRelayOnly,
		NATTypeTCP: "unknown", NATTypeUDP: "endpoint-dependent",
		DirectAddrs: []string{"/ip4/192.168.1.5/tcp/4001"}, RelayAddrs: []string{"/ip4/198.51.100.7/tcp/4001/p2p/12D3KooWRelay/p2p-circuit"},
		Mapping:      &NATMappingDTO{Behavior: MappingEndpointDependent, PublicAddr: "198.51.100.9:40000", Servers: []string{"stun:198.51.100.7:3478"}, CheckedAt: "2026-12-03T12:00:01Z"},
		PortMappings: []PortMappingDTO{},
		PeerCheck: &PeerCheckDTO{CheckedAt: "2026-12-03T12:01:00Z", Asked: 3, Reachable: 2, Results: []PeerCheckResultDTO{
			{Peer: "12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", Reachable: true, Path: "relay", RTTMillis: 20},
			{Peer: "12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", Reachable: true, Path: "relay", RTTMillis: 25},
			{Peer: "12D3KooWCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", Error: "connect: timeout"},
		}},
	}
}

func TestNATRoutes(t *testing.T) {
	e := newEnv(t, nil)
	f := &fakeNAT{st: testNATStatus(), check: *testNATStatus().PeerCheck}
	e.s.Add(NATRoutes(f, nil)...)
	e.expectError(t, "GET", "/nat", "", "", http.StatusUnauthorized, CodeUnauthorized)
	tok := e.login(t)
	var got NATStatusDTO
	if resp := e.do(t, "GET", "/nat", tok, "", &got); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /nat: %d", resp.StatusCode)
	}
	if got.Access != AccessRelayOnly || got.PeerCheck == nil || got.PeerCheck.Reachable != 2 || got.Mapping.Behavior != MappingEndpointDependent {
		t.Fatalf("GET /nat = %+v", got)
	}
	var c PeerCheckDTO
	if resp := e.do(t, "POST", "/nat/check", tok, "", &c); resp.StatusCode != http.StatusOK || c.Asked != 3 {
		t.Fatalf("POST /nat/check: %d %+v", resp.StatusCode, c)
	}
	f.err = ErrCheckTooSoon
	e.expectError(t, "POST", "/nat/check", tok, "", http.StatusTooManyRequests, CodeTooManyRequests)
	f.err = ErrNoCheckers
	e.expectError(t, "POST", "/nat/check", tok, "", http.StatusServiceUnavailable, "no_checkers")
	doc := e.s.OpenAPI()
	if doc.Paths["/nat"]["get"] == nil || doc.Paths["/nat/check"]["post"].Responses["429"].Description == "" {
		t.Fatalf("/nat routes not documented: %+v", doc.Paths["/nat"])
	}
}

func TestNATPrint(t *testing.T) {
	var b strings.Builder
	if err := testNATStatus().Print(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"relay-only (AutoNAT: private since 2026-12-03T12:00:00Z)", "reachable from 2 of 3 peers",
		"nat mapping (stun)  endpoint-dependent, public 198.51.100.9:40000", "relay addr", "port mappings", "failed: connect: timeout",
		"reached over the relay path, 20ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
