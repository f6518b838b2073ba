package ice

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/nat/punch"
)

func goodOffer() Offer {
	return Offer{
		Ufrag: "YSrLPoYAfVTnNuYJ",
		Pwd:   "uJGkqqlHamqDNXHQYkiIigvkZudiesAI",
		Candidates: []string{
			"3219196220 1 udp 2130706431 25.0.0.13 42632 typ host",
			"3941731551 1 udp 1694498815 25.0.0.13 56507 typ srflx raddr 0.0.0.0 rport 56507",
			"1314363936 1 udp 16777215 25.0.0.1 34756 typ relay raddr 25.0.0.13 rport 51707",
		},
	}
}

func TestOfferValidate(t *testing.T) {
	if cands, err := goodOffer().Validate(CandidatePolicy{}); err != nil || len(cands) != 3 {
		t.Fatalf("good offer: %d candidates, %v", len(cands), err)
	}
	withCand := func(c string) func(*Offer) {
		return func(o *Offer) { o.Candidates = append(o.Candidates, c) }
	}
	for name, tc := range map[string]struct {
		mod  func(*Offer)
		want error
	}{
		"short ufrag":     {func(o *Offer) { o.Ufrag = "abc" }, ErrBadOffer},
		"ufrag char":      {func(o *Offer) { o.Ufrag = "abc d" }, ErrBadOffer},
		"short pwd":       {func(o *Offer) { o.Pwd = "short" }, ErrBadOffer},
		"long pwd":        {func(o *Offer) { o.Pwd = strings.Repeat("a", 65) }, ErrBadOffer},
		"no candidates":   {func(o *Offer) { o.Candidates = nil }, ErrBadOffer},
		"too many":        {func(o *Offer) { o.Candidates = make([]string, MaxCandidates+1) }, ErrBadOffer},
		"garbage":         {withCand("not a candidate"), ErrBadCandidate},
		"loopback":        {withCand("1 1 udp 2130706431 127.0.0.1 5000 typ host"), ErrBadCandidate},
		"private":         {withCand("1 1 udp 2130706431 192.168.1.2 5000 typ host"), ErrBadCandidate},
		"metadata":        {withCand("1 1 udp 2130706431 169.254.169.254 80 typ host"), ErrBadCandidate},
		"link-local v6":   {withCand("1 1 udp 2130706431 fe80::1 5000 typ host"), ErrBadCandidate},
		"unspecified":     {withCand("1 1 udp 2130706431 0.0.0.0 5000 typ host"), ErrBadCandidate},
		"multicast":       {withCand("1 1 udp 2130706431 239.255.255.250 1900 typ host"), ErrBadCandidate},
		"broadcast":       {withCand("1 1 udp 2130706431 255.255.255.255 5000 typ host"), ErrBadCandidate},
		"hostname (mDNS)": {withCand("1 1 udp 2130706431 a.local 5000 typ host"), ErrBadCandidate},
		"tcp":             {withCand("1 1 tcp 2130706431 25.0.0.2 5000 typ host tcptype passive"), ErrBadCandidate},
		"port 0":          {withCand("1 1 udp 2130706431 25.0.0.2 0 typ host"), ErrBadCandidate},
		"oversize":        {withCand("1 1 udp 2130706431 25.0.0.2 5000 typ host " + strings.Repeat("x", 300)), ErrBadCandidate},
		"punch mapping":   {withPunch("cone", "25.0.0.9:4000"), ErrBadOffer},
		"punch loopback":  {withPunch(punch.Easy, "127.0.0.1:4000"), ErrBadOffer},
		"punch private":   {withPunch(punch.Hard, "10.1.2.3:4000"), ErrBadOffer},
		"punch metadata":  {withPunch(punch.Easy, "169.254.169.254:80"), ErrBadOffer},
		"punch ipv6":      {withPunch(punch.Easy, "[2001:db8::1]:4000"), ErrBadOffer},
		"punch port 0":    {withPunch(punch.Easy, "25.0.0.9:0"), ErrBadOffer},
		"punch garbage":   {withPunch(punch.Easy, "25.0.0.9"), ErrBadOffer},
	} {
		t.Run(name, func(t *testing.T) {
			o := goodOffer()
			tc.mod(&o)
			if _, err := o.Validate(CandidatePolicy{}); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	// A devnet accepts its loopback and private candidates, never the rest.
	o := goodOffer()
	o.Candidates = append(o.Candidates, "1 1 udp 2130706431 127.0.0.1 5000 typ host", "1 1 udp 2130706431 10.0.0.2 5000 typ host")
	if _, err := o.Validate(CandidatePolicy{AllowPrivate: true}); err != nil {
		t.Fatalf("devnet policy: %v", err)
	}
	o.Candidates = append(o.Candidates, "1 1 udp 2130706431 169.254.169.254 80 typ host")
	if _, err := o.Validate(CandidatePolicy{AllowPrivate: true}); !errors.Is(err, ErrBadCandidate) {
		t.Fatalf("devnet policy accepted the metadata address: %v", err)
	}
}

func withPunch(mapping, addr string) func(*Offer) {
	return func(o *Offer) { o.Punch = &punch.Info{Mapping: mapping, Addr: addr} }
}

// TestOfferPunch: an offer carries the punch socket's address and
// mapping, validated like its candidates; without one it encodes as
// before (no "punch" key).
func TestOfferPunch(t *testing.T) {
	o := goodOffer()
	if b, _ := json.Marshal(o); strings.Contains(string(b), "punch") {
		t.Fatalf("offer without punching encodes a punch key: %s", b)
	}
	withPunch(punch.Hard, "25.0.0.9:4000")(&o)
	b, _ := json.Marshal(o)
	got, _, err := DecodeOffer(b, CandidatePolicy{})
	if err != nil || got.Punch == nil || *got.Punch != *o.Punch {
		t.Fatalf("decoded %+v, %v", got.Punch, err)
	}
	withPunch(punch.Easy, "10.1.2.3:4000")(&o)
	if _, err := o.Validate(CandidatePolicy{AllowPrivate: true}); err != nil {
		t.Fatalf("devnet policy refused a private punch address: %v", err)
	}
}

func TestDecodeOfferStrict(t *testing.T) {
	b, _ := json.Marshal(goodOffer())
	if _, _, err := DecodeOffer(b, CandidatePolicy{}); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{
		"unknown field": strings.Replace(string(b), `"ufrag"`, `"x":1,"ufrag"`, 1),
		"trailing":      string(b) + "{}",
		"not json":      "ice",
		"oversize":      `{"ufrag":"` + strings.Repeat("a", MaxOfferSize) + `"}`,
	} {
		if _, _, err := DecodeOffer([]byte(in), CandidatePolicy{}); !errors.Is(err, ErrBadOffer) {
			t.Errorf("%s: error %v, want ErrBadOffer", name, err)
		}
	}
}

// FuzzDecodeOffer: no input panics, and an accepted offer re-encodes to
// one that is accepted again with the same candidates.
func FuzzDecodeOffer(f *testing.F) {
	o := goodOffer()
	b, _ := json.Marshal(o)
	f.Add(b)
	f.Add([]byte(`{"ufrag":"abcd","pwd":"0123456789012345678901","candidates":["1 1 udp 1 25.0.0.1 1 typ host"]}`))
	f.Add([]byte(`{"candidates":["1 1 udp 1 ::1 1 typ host generation 0"]}`))
	withPunch(punch.Easy, "25.0.0.9:4000")(&o)
	b, _ = json.Marshal(o)
	f.Add(b)
	f.Add([]byte(`{"ufrag":"abcd","pwd":"0123456789012345678901","candidates":["1 1 udp 1 25.0.0.1 1 typ host"],"punch":{"mapping":"hard","addr":"25.0.0.1:1"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		o, cands, err := DecodeOffer(in, CandidatePolicy{})
		if err != nil {
			return
		}
		again, _ := json.Marshal(o)
		_, cands2, err := DecodeOffer(again, CandidatePolicy{})
		if err != nil {
			t.Fatalf("re-encoded offer refused: %v", err)
		}
		if fmt.Sprint(len(cands)) != fmt.Sprint(len(cands2)) {
			t.Fatalf("candidates changed: %d -> %d", len(cands), len(cands2))
		}
	})
}

func TestParseServers(t *testing.T) {
	s, err := ParseServers([]string{"stun:25.0.0.1:3478"}, []string{"turn:25.0.0.1:3478?transport=tcp", "turns:relay.example:5349"}, "u", "p")
	if err != nil || len(s) != 3 || s[1].Username != "u" || s[0].Username != "" {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []struct {
		stun, turn []string
		user       string
	}{
		{stun: []string{"25.0.0.1:3478"}},
		{stun: []string{"turn:25.0.0.1:3478"}},
		{turn: []string{"stun:25.0.0.1:3478"}, user: "u"},
		{turn: []string{"turn:25.0.0.1:3478"}},
		{turn: []string{"turn:25.0.0.1:3478?transport=sctp"}, user: "u"},
	} {
		if _, err := ParseServers(bad.stun, bad.turn, bad.user, "p"); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestCandidateAddrs: where the checks of an offer go, each once.
func TestCandidateAddrs(t *testing.T) {
	o := goodOffer()
	o.Candidates = append(o.Candidates, "3219196221 1 udp 2130706430 25.0.0.13 42632 typ host")
	cands, err := o.Validate(CandidatePolicy{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(CandidateAddrs(cands))
	if want := "[25.0.0.13:42632 25.0.0.13:56507 25.0.0.1:34756]"; got != want {
		t.Fatalf("CandidateAddrs = %s, want %s", got, want)
	}
}

// TestPathSendsTo: a kill switch admits the remote address of a pair
// this host sends on itself, nothing for a pair through its own TURN
// server.
func TestPathSendsTo(t *testing.T) {
	ra := netip.MustParseAddrPort("25.0.0.13:42632")
	for _, tc := range []struct {
		p    Path
		want bool
	}{
		{Path{Kind: PathDirect, Local: "host", Remote: "host", RemoteAddr: ra}, true},
		{Path{Kind: PathDirect, Local: "srflx", Remote: "prflx", RemoteAddr: ra}, true},
		{Path{Kind: PathRelay, Local: "host", Remote: "relay", RemoteAddr: ra}, true},
		{Path{Kind: PathRelay, Local: "relay", Remote: "host", RemoteAddr: ra}, false},
		{Path{}, false},
	} {
		got, ok := tc.p.SendsTo()
		if ok != tc.want || (ok && got != ra) {
			t.Errorf("%+v: SendsTo = %v, %v; want %v", tc.p, got, ok, tc.want)
		}
	}
}
