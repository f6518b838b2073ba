package market

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
)

func myst(t testing.TB, s string) money.Amount {
	t.Helper()
	a, err := money.ParseMYSTAmount(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func testProposal(t testing.TB, signer identity.Signer) Proposal {
	return Proposal{
		Version:     ProposalVersion,
		ChainID:     1337,
		ProviderID:  signer.Address(),
		PeerID:      keytest.PeerID(t).String(),
		Addrs:       []string{"/ip4/127.0.0.1/tcp/4001"},
		ServiceType: ServiceWireGuard,
		Location:    Location{Country: "DE", City: "Berlin", ASN: 3320, IPType: IPResidential},
		Price:       Price{PerHour: myst(t, "0.01"), PerGiB: myst(t, "0.1")},
		Hermes:      []common.Address{common.HexToAddress("0x00000000000000000000000000000000000000aa")},
		Access:      AccessPolicy{Kind: AccessPublic},
		Seq:         1,
		IssuedAt:    1_700_000_000,
		ExpiresAt:   1_700_000_600,
	}
}

func TestCountryList(t *testing.T) {
	if n := len(countries); n != 249 {
		t.Fatalf("have %d ISO 3166-1 alpha-2 codes, want 249", n)
	}
	for _, c := range []string{"DE", "US", "LT", "GB"} {
		if !ValidCountry(c) {
			t.Errorf("%s rejected", c)
		}
	}
	for _, c := range []string{"", "de", "XX", "UK", "DEU", "EU"} {
		if ValidCountry(c) {
			t.Errorf("%q accepted", c)
		}
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	s := keytest.Signer(t)
	sp, err := Sign(testProposal(t, s), s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSignedProposal(b)
	if err != nil {
		t.Fatalf("decode: %v\n%s", err, b)
	}
	b2, _ := got.Encode()
	if !bytes.Equal(b, b2) {
		t.Fatalf("re-encoding differs:\n%s\n%s", b, b2)
	}
	if got.Proposal.Price.PerGiB.MYST() != "0.1" {
		t.Fatalf("price per GiB %s, want 0.1", got.Proposal.Price.PerGiB.MYST())
	}
	// Tampering with any signed field breaks the signature.
	tampered := strings.Replace(string(b), `"country":"DE"`, `"country":"FR"`, 1)
	if _, err := DecodeSignedProposal([]byte(tampered)); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("tampered country: err %v, want bad signature", err)
	}
	// Signing as someone else is refused; verifying a foreign signature fails.
	other := keytest.Signer(t)
	if _, err := Sign(testProposal(t, s), other); err == nil {
		t.Fatal("signed a proposal for another provider")
	}
	forged := sp
	p := testProposal(t, other)
	p.ProviderID = s.Address()
	d, _ := p.Digest()
	forged.Signature, _ = other.Sign(d[:])
	forged.Proposal = p
	if err := forged.Verify(); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("forged: err %v, want bad signature", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	s := keytest.Signer(t)
	sp, err := Sign(testProposal(t, s), s)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := sp.Encode()
	cases := map[string]string{
		"unknown field":     strings.Replace(string(good), `"seq":`, `"extra":1,"seq":`, 1),
		"unknown top field": strings.Replace(string(good), `{"proposal":`, `{"x":1,"proposal":`, 1),
		"missing seq":       strings.Replace(string(good), `"seq":1,`, ``, 1),
		"missing price":     strings.Replace(string(good), `"per_gib":"100000000000000000"`, `"per_gib":null`, 1),
		"float price":       strings.Replace(string(good), `"per_gib":"100000000000000000"`, `"per_gib":0.1`, 1),
		"negative price":    strings.Replace(string(good), `"per_gib":"100000000000000000"`, `"per_gib":"-1"`, 1),
		"huge price":        strings.Replace(string(good), `"per_gib":"100000000000000000"`, `"per_gib":"`+strings.Repeat("9", 78)+`"`, 1),
		"bad country":       strings.Replace(string(good), `"country":"DE"`, `"country":"XX"`, 1),
		"bad ip type":       strings.Replace(string(good), `"ip_type":"residential"`, `"ip_type":"cloud"`, 1),
		"bad version":       strings.Replace(string(good), `"version":1`, `"version":2`, 1),
		"seq overflow":      strings.Replace(string(good), `"seq":1`, `"seq":18446744073709551616`, 1),
		"bad peer":          strings.Replace(string(good), `"peer_id":"`, `"peer_id":"x`, 1),
		"bad addr":          strings.Replace(string(good), `/ip4/127.0.0.1/tcp/4001`, `/ip4/999.0.0.1/tcp/4001`, 1),
		"short signature":   strings.Replace(string(good), `"signature":"0x`, `"signature":"0x00`, 1),
		"trailing data":     string(good) + `{}`,
		"not json":          `proposal`,
		"empty":             ``,
		"oversized":         strings.Replace(string(good), `"city":"Berlin"`, `"city":"`+strings.Repeat("a", MaxProposalSize)+`"`, 1),
	}
	for name, in := range cases {
		if in == string(good) {
			t.Fatalf("%s: mutation did not apply", name)
		}
		if _, err := DecodeSignedProposal([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestValidateLimits(t *testing.T) {
	s := keytest.Signer(t)
	mut := map[string]func(p *Proposal){
		"ttl too long":        func(p *Proposal) { p.ExpiresAt = p.IssuedAt + int64(MaxTTL/time.Second) + 1 },
		"expiry before issue": func(p *Proposal) { p.ExpiresAt = p.IssuedAt },
		"no hermes":           func(p *Proposal) { p.Hermes = nil },
		"dup hermes":          func(p *Proposal) { p.Hermes = append(p.Hermes, p.Hermes[0]) },
		"allowlist empty":     func(p *Proposal) { p.Access = AccessPolicy{Kind: AccessAllowList} },
		"public with allow":   func(p *Proposal) { p.Access.Allow = []common.Address{s.Address()} },
		"city control char":   func(p *Proposal) { p.Location.City = "a\nb" },
		"no service":          func(p *Proposal) { p.ServiceType = "" },
		"zero provider":       func(p *Proposal) { p.ProviderID = common.Address{} },
		"no chain":            func(p *Proposal) { p.ChainID = 0 },
		"too many addrs":      func(p *Proposal) { p.Addrs = make([]string, MaxAddrs+1) },
	}
	for name, m := range mut {
		p := testProposal(t, s)
		m(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	p := testProposal(t, s)
	p.Access = AccessPolicy{Kind: AccessAllowList, Allow: []common.Address{s.Address()}}
	if err := p.Validate(); err != nil {
		t.Fatalf("allow list: %v", err)
	}
	if !p.Access.Allows(s.Address()) || p.Access.Allows(common.Address{1}) {
		t.Fatal("allow list membership wrong")
	}
}

func TestCheckTime(t *testing.T) {
	p := testProposal(t, keytest.Signer(t))
	issued := time.Unix(p.IssuedAt, 0)
	if err := p.CheckTime(issued.Add(time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckTime(p.Expiry(), time.Minute); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: %v", err)
	}
	if err := p.CheckTime(issued.Add(-2*time.Minute), time.Minute); !errors.Is(err, ErrFuture) {
		t.Fatalf("early: %v", err)
	}
}

func TestFilterAndSort(t *testing.T) {
	var ps []Proposal
	mk := func(country string, ipt IPType, hour, gib string) {
		s := keytest.Signer(t)
		p := testProposal(t, s)
		p.Location.Country, p.Location.IPType = country, ipt
		p.Price = Price{PerHour: myst(t, hour), PerGiB: myst(t, gib)}
		ps = append(ps, p)
	}
	mk("DE", IPResidential, "0.01", "0.3")
	mk("DE", IPHosting, "0.02", "0.1")
	mk("US", IPResidential, "0.01", "0.2")
	mk("DE", IPResidential, "0.05", "0.2")
	withdrawn := ps[0]
	withdrawn.Withdrawn = true
	ps = append(ps, withdrawn)

	f, err := ParseFilter(url.Values{"country": {"de"}, "ip_type": {"residential"}, "max_price_gib": {"0.25"}})
	if err != nil {
		t.Fatal(err)
	}
	got := f.Apply(ps)
	if len(got) != 1 || got[0].ProviderID != ps[3].ProviderID {
		t.Fatalf("filter DE/residential/<=0.25: got %d proposals", len(got))
	}
	all := Filter{}.Apply(ps)
	if len(all) != 4 {
		t.Fatalf("empty filter: %d proposals, want 4 (withdrawn excluded)", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Price.PerGiB.Cmp(all[i].Price.PerGiB) > 0 {
			t.Fatal("not sorted by price per GiB")
		}
	}
	// ps[2] and ps[3] tie on per-GiB; per-hour breaks the tie.
	if all[1].ProviderID != ps[2].ProviderID {
		t.Fatal("tie not broken by price per hour")
	}
	// Stable JSON: same input in any order gives identical bytes.
	rev := append([]Proposal(nil), all...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	Sort(rev, SortPrice)
	a, _ := MarshalList(all)
	b, _ := MarshalList(rev)
	if !bytes.Equal(a, b) {
		t.Fatal("JSON output depends on input order")
	}
	if e, _ := MarshalList(nil); string(e) != "[]" {
		t.Fatalf("empty list encodes as %s", e)
	}
	hf := Filter{Hermes: common.HexToAddress("0x00000000000000000000000000000000000000bb")}
	if len(hf.Apply(ps)) != 0 {
		t.Fatal("hermes filter matched an unaccepted hermes")
	}
	pf := Filter{ProviderID: ps[1].ProviderID}
	if r := pf.Apply(ps); len(r) != 1 || r[0].ProviderID != ps[1].ProviderID {
		t.Fatal("provider filter")
	}
}

func TestParseFilterRejects(t *testing.T) {
	for _, q := range []url.Values{
		{"contry": {"DE"}},
		{"country": {"XX"}},
		{"country": {"DE", "FR"}},
		{"ip_type": {"datacenter"}},
		{"max_price_gib": {"-1"}},
		{"max_price_hour": {"abc"}},
		{"provider_id": {"123"}},
		{"hermes_id": {"0xzz"}},
		{"sort": {"random"}},
		{"service_type": {"openvpn"}},
	} {
		if _, err := ParseFilter(q); err == nil {
			t.Errorf("ParseFilter(%v) accepted", q)
		}
	}
	f := Filter{Country: "DE", IPType: IPMobile, ServiceType: ServiceWireGuard, MaxPricePerGiB: myst(t, "0.2"),
		MaxPricePerHour: myst(t, "1"), ProviderID: common.Address{1}, Hermes: common.Address{2}, Sort: SortProvider}
	back, err := ParseFilter(f.Values())
	if err != nil {
		t.Fatal(err)
	}
	if back.Values().Encode() != f.Values().Encode() {
		t.Fatalf("round trip: %v != %v", back.Values(), f.Values())
	}
}

// fixedSigner is the same identity in every process, as fuzz workers need.
func fixedSigner(t testing.TB) *identity.KeySigner {
	k, err := crypto.ToECDSA(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return identity.NewKeySigner(k)
}

func FuzzDecodeSignedProposal(f *testing.F) {
	s := fixedSigner(f)
	sp, err := Sign(testProposal(f, s), s)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := sp.Encode()
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"proposal":{"version":1},"signature":"0x"}`))
	f.Add([]byte(strings.Replace(string(good), `"seq":1`, `"seq":2`, 1)))
	pc := testProposal(f, s)
	pc.Caps = &Caps{Bandwidth: 1 << 20}
	pc.Version = pc.FormatVersion()
	if spc, err := Sign(pc, s); err != nil {
		f.Fatal(err)
	} else {
		withCaps, _ := spc.Encode()
		f.Add(withCaps)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeSignedProposal(b)
		if err != nil {
			return
		}
		// Anything accepted re-encodes canonically and decodes to the same.
		enc, err := got.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeSignedProposal(enc)
		if err != nil {
			t.Fatalf("re-decode of accepted proposal: %v", err)
		}
		enc2, _ := again.Encode()
		if !bytes.Equal(enc, enc2) {
			t.Fatal("encoding not canonical")
		}
		if got.Proposal.ProviderID != s.Address() {
			t.Fatal("accepted a proposal not signed by the seed's provider")
		}
	})
}

// TestSortQualityKeepsOrder: market cannot see scores, so sort=quality
// keeps the order the proposal cache delivered (Pick relies on it).
func TestSortQualityKeepsOrder(t *testing.T) {
	a, b := common.HexToAddress("0x02"), common.HexToAddress("0x01")
	ps := []Proposal{{ProviderID: a}, {ProviderID: b}}
	Sort(ps, SortQuality)
	if ps[0].ProviderID != a {
		t.Fatal("sort=quality reordered the proposals")
	}
	f, err := ParseFilter(url.Values{QuerySort: {"quality"}})
	if err != nil || f.Sort != SortQuality {
		t.Fatalf("parse sort=quality: %+v %v", f, err)
	}
}

// TestFilterOptions: every option reaches its filter field; empty options
// filter nothing; a bad option is refused.
func TestFilterOptions(t *testing.T) {
	o := FilterOptions{ProviderID: common.Address{1}.Hex(), Country: "de", IPType: "mobile", MaxPriceGiB: "0.2", MaxPriceHour: "1",
		HermesID: common.Address{2}.Hex(), Sort: "provider"}
	f, err := o.Filter()
	if err != nil {
		t.Fatal(err)
	}
	want := Filter{Country: "DE", IPType: IPMobile, MaxPricePerGiB: myst(t, "0.2"), MaxPricePerHour: myst(t, "1"),
		ProviderID: common.Address{1}, Hermes: common.Address{2}, Sort: SortProvider}
	if f.Values().Encode() != want.Values().Encode() {
		t.Fatalf("filter %v, want %v", f.Values(), want.Values())
	}
	if f, err := (FilterOptions{}).Filter(); err != nil || len(f.Values()) != 0 {
		t.Fatalf("empty options: %v %v", f.Values(), err)
	}
	if _, err := (FilterOptions{IPType: "datacenter"}).Filter(); err == nil {
		t.Fatal("bad ip type accepted")
	}
}

// TestProposalCapsVersion2: caps make a version 2 proposal, which signs,
// decodes and re-encodes canonically; a version 1 encoding has no caps
// key (so its digest is what version-1 nodes compute); caps and version
// must agree, and the caps are decoded as strictly as the rest.
func TestProposalCapsVersion2(t *testing.T) {
	s := keytest.Signer(t)
	p1 := testProposal(t, s)
	v1, _ := p1.CanonicalJSON()
	if strings.Contains(string(v1), "caps") {
		t.Fatalf("version 1 encoding mentions caps: %s", v1)
	}
	p := testProposal(t, s)
	p.Caps = &Caps{Bandwidth: 1 << 20}
	if _, err := Sign(p, s); err == nil {
		t.Fatal("signed caps in a version 1 proposal")
	}
	p.Version = p.FormatVersion()
	if p.Version != ProposalVersionCaps {
		t.Fatalf("format version %d with caps", p.Version)
	}
	sp, err := Sign(p, s)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := sp.Encode()
	got, err := DecodeSignedProposal(good)
	if err != nil {
		t.Fatalf("decode: %v\n%s", err, good)
	}
	if again, _ := got.Encode(); !bytes.Equal(again, good) || got.Proposal.Caps == nil || got.Proposal.Caps.Bandwidth != 1<<20 {
		t.Fatalf("round trip: %s, caps %+v", again, got.Proposal.Caps)
	}
	cases := map[string]string{
		"caps dropped":      strings.Replace(string(good), `,"caps":{"bandwidth":1048576}`, ``, 1),
		"caps null":         strings.Replace(string(good), `"caps":{"bandwidth":1048576}`, `"caps":null`, 1),
		"version 1":         strings.Replace(string(good), `"version":2`, `"version":1`, 1),
		"version 3":         strings.Replace(string(good), `"version":2`, `"version":3`, 1),
		"tiny bandwidth":    strings.Replace(string(good), `"bandwidth":1048576`, `"bandwidth":1000`, 1),
		"negative":          strings.Replace(string(good), `"bandwidth":1048576`, `"bandwidth":-1`, 1),
		"unknown caps key":  strings.Replace(string(good), `"bandwidth":1048576`, `"bandwidth":1048576,"x":1`, 1),
		"tampered caps":     strings.Replace(string(good), `"bandwidth":1048576`, `"bandwidth":2097152`, 1),
		"caps as a string":  strings.Replace(string(good), `{"bandwidth":1048576}`, `"1048576"`, 1),
		"bandwidth as text": strings.Replace(string(good), `"bandwidth":1048576`, `"bandwidth":"1048576"`, 1),
	}
	for name, in := range cases {
		if in == string(good) {
			t.Fatalf("%s: mutation did not apply", name)
		}
		if _, err := DecodeSignedProposal([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
