package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
)

// testGeoDB writes a GeoLite2-City style database mapping 203.0.113.0/24
// to Amsterdam, AS64500, and 10.0.0.0/8 (never to be looked up) to the US.
func testGeoDB(t *testing.T) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for prefix, rec := range map[string]mmdbtype.Map{
		"203.0.113.0/24": {
			"country":                  mmdbtype.Map{"iso_code": mmdbtype.String("NL")},
			"city":                     mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Amsterdam")}},
			"autonomous_system_number": mmdbtype.Uint32(64500),
		},
		"10.0.0.0/8": {"country": mmdbtype.Map{"iso_code": mmdbtype.String("US")}},
	} {
		_, n, _ := net.ParseCIDR(prefix)
		if err := tree.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "city.mmdb")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func geoOffer(t *testing.T, lo node.LocationOptions) (market.Location, error) {
	t.Helper()
	f := node.OfferOptions{ChainID: 1337, Location: lo, PriceHour: "0.01", PriceGiB: "0.2", Hermes: []string{"0x00000000000000000000000000000000000000aa"}}
	p, err := f.Offer()
	if err != nil {
		return market.Location{}, err
	}
	lc, err := f.Location.Config()
	if err != nil {
		return market.Location{}, err
	}
	loc, later, err := node.AnnounceLocation(lc, slog.New(slog.DiscardHandler))
	if err != nil {
		return loc, err
	}
	if later != nil {
		t.Fatal("--location.ip given but the location waits for the host")
	}
	p.Location = loc
	return loc, p.ValidateOffer()
}

// TestOfferGeoIP: a proposal built with --location.geoip-db and
// --location.ip carries the database's country, city and ASN; each flag
// overrides its field; bad files and private addresses are refused.
func TestOfferGeoIP(t *testing.T) {
	db := testGeoDB(t)
	loc, err := geoOffer(t, node.LocationOptions{DB: db, IP: "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (market.Location{Country: "NL", City: "Amsterdam", ASN: 64500, IPType: market.IPResidential}); loc != want {
		t.Fatalf("location %+v, want %+v", loc, want)
	}
	loc, err = geoOffer(t, node.LocationOptions{Country: "be", City: "Brussels", ASN: 7, IPType: "mobile", DB: db, IP: "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (market.Location{Country: "BE", City: "Brussels", ASN: 7, IPType: market.IPMobile}); loc != want {
		t.Fatalf("overridden location %+v, want %+v", loc, want)
	}
	// Not in the database: the flags alone, or an error without a country.
	if loc, err = geoOffer(t, node.LocationOptions{Country: "AT", DB: db, IP: "198.51.100.1"}); err != nil || loc.Country != "AT" || loc.ASN != 0 {
		t.Fatalf("miss: %+v %v", loc, err)
	}
	if _, err = geoOffer(t, node.LocationOptions{DB: db, IP: "198.51.100.1"}); err == nil || !strings.Contains(err.Error(), "--location.country") {
		t.Fatalf("miss without country: %v", err)
	}
	// Without --location.ip the host's addresses decide, after bootstrap;
	// a loopback-only host has no public address, so the flags stay.
	f := node.LocationOptions{Country: "SE", DB: db}
	lc, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	_, later, err := node.AnnounceLocation(lc, slog.New(slog.DiscardHandler))
	if err != nil || later == nil {
		t.Fatalf("no --location.ip: later=%v err=%v", later != nil, err)
	}
	h, err := p2p.New(p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, DHTMode: p2p.DHTClient, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if loc, err = later(h.Host); err != nil || loc != (market.Location{Country: "SE", IPType: market.IPResidential}) {
		t.Fatalf("loopback host: %+v %v", loc, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.mmdb")
	if err := os.WriteFile(bad, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]node.LocationOptions{
		"private ip":        {DB: db, IP: "10.1.2.3"},
		"bad ip":            {DB: db, IP: "203.0.113"},
		"ip without db":     {Country: "DE", IP: "203.0.113.7"},
		"asn db without db": {Country: "DE", ASNDB: db},
		"corrupt db":        {DB: bad, IP: "203.0.113.7"},
		"missing db":        {DB: bad + ".missing", IP: "203.0.113.7"},
		"no country no db":  {},
		"bad ip type":       {IPType: "cloud", DB: db, IP: "203.0.113.7"},
	} {
		_, err := geoOffer(t, f)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if (name == "corrupt db" || name == "missing db") && !strings.Contains(err.Error(), f.DB) {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
}

// TestDaemonAnnouncesGeoIPLocation: `myst daemon --provider.announce
// --location.geoip-db F --location.ip 203.0.113.7` announces the
// database's location; `myst proposals` on another node lists it.
func TestDaemonAnnouncesGeoIPLocation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemon subprocesses")
	}
	db := testGeoDB(t)
	bootDir, provDir := t.TempDir(), t.TempDir()
	_, _, bootAddr := mysttest.StartBootstrapDaemon(t, bootDir, mysttest.FreePort(t))

	provider, pf := newDefaultIdentity(t, provDir, "provider-pw")
	_, provLines := mysttest.StartDaemon(t, provDir, mysttest.FreePort(t),
		"--p2p.bootstrap", bootAddr, "--provider.announce", "--provider.passphrase-file", pf,
		"--location.geoip-db", db, "--location.ip", "203.0.113.7", "--location.ip-type", "hosting",
		"--provider.hermes", "0x00000000000000000000000000000000000000aa")
	var pseen []string
	mysttest.WaitLine(t, provLines, "geoip: location detected", &pseen)
	mysttest.WaitLine(t, provLines, "discovery: announcing proposal", &pseen)

	out, err := runCLI(t, t.TempDir(), "proposals", "--p2p.bootstrap", bootAddr, "--p2p.listen", "/ip4/127.0.0.1/tcp/0", "--wait", "2s", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ps []market.Proposal
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	want := market.Location{Country: "NL", City: "Amsterdam", ASN: 64500, IPType: market.IPHosting}
	if len(ps) != 1 || !strings.EqualFold(ps[0].ProviderID.Hex(), provider) || ps[0].Location != want {
		t.Fatalf("proposals = %+v, want %s at %+v", ps, provider, want)
	}
}

// TestServiceGeoIPProposal: `myst service --location.geoip-db F
// --location.ip 203.0.113.7 --location.city Haarlem` registers on a devnet
// and publishes a proposal with the database's country and ASN and the
// flag's city; a consumer sees it.
func TestServiceGeoIPProposal(t *testing.T) {
	ctx, d, dd, provider, pf := devnetProviderDir(t, 2*time.Minute)
	_, lines := mysttest.StartService(t, dd, mysttest.FreePort(t), mysttest.ServiceArgs(d, pf,
		"--service.api=false", "--location.geoip-db", testGeoDB(t), "--location.ip", "203.0.113.7", "--location.city", "Haarlem")...)
	var seen []string
	if l := mysttest.WaitLine(t, lines, "location: country", &seen); !strings.Contains(l, `country NL, city "Haarlem", asn 64500, ip type residential`) {
		t.Fatalf("service printed %q", l)
	}
	_, ps := mysttest.Proposals(ctx, t, d, "NL", 1)
	want := market.Location{Country: "NL", City: "Haarlem", ASN: 64500, IPType: market.IPResidential}
	if !strings.EqualFold(ps[0].ProviderID.Hex(), provider) || ps[0].Location != want {
		t.Fatalf("proposal %+v, want %s at %+v", ps[0], provider, want)
	}
}
