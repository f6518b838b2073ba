package node

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/geoip"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// TestDaemonProviderStateSurvivesRestart: the provider's desired state
// outlives the daemon. A --provider.serve provider stopped with DELETE
// /service stays off when the daemon restarts (with the same flags); one
// started with PUT /service {"provider": options} comes back after a
// restart with those options (caps, and the prices in the consumer's
// proposals), and with a price changed by PUT /provider/price.
func TestDaemonProviderStateSurvivesRestart(t *testing.T) {
	ctx := testenv.Long(t, "runs a devnet and a daemon three times; skipped with -short", 90*time.Second)
	b := newProviderBed(t, ctx, "127.0.0.8")
	c, provID, cfg := b.consumer, b.provider, b.cfg
	price, _ := money.ParseMYSTAmount("0.1")
	cfg.Provider.Serve = &ProviderConfig{HermesURL: b.devnet.Hermes.URL(), Price: market.Price{PerHour: price, PerGiB: price}, Payment: testPayment}
	start := func() (*client.Client, func()) {
		t.Helper()
		td, stop := startTestDaemon(t, cfg)
		api, err := client.New(td.base, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := api.Login(ctx, td.pw); err != nil {
			t.Fatal(err)
		}
		return api, stop
	}
	serving := func(api *client.Client) tequilapi.ServiceCapsDTO {
		t.Helper()
		for {
			caps, err := api.ServiceCaps(ctx)
			if err == nil {
				return caps
			}
			if ctx.Err() != nil {
				t.Fatalf("the provider does not serve: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	state := func(api *client.Client, want string) tequilapi.ServiceOptionsDTO {
		t.Helper()
		st, err := api.ServiceOptions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != want {
			t.Fatalf("GET /service/options state %q, want %q", st.State, want)
		}
		return st
	}

	// Run 1: the --provider.serve provider; turned off.
	api, stop := start()
	serving(api)
	state(api, tequilapi.ProviderOn)
	if err := api.StopService(ctx); err != nil {
		t.Fatal(err)
	}
	stop()

	// Run 2 (same flags): it stays off; turned on with chosen options.
	api, stop = start()
	if _, err := api.ServiceCaps(ctx); !client.IsCode(err, tequilapi.CodeNotFound) {
		t.Fatalf("after a restart, the stopped provider: GET /service/caps %v, want 404 not_found", err)
	}
	if st := state(api, tequilapi.ProviderOff); !st.Restartable {
		t.Fatal("the stopped --provider.serve provider is not restartable after the restart")
	}
	opts := tequilapi.ProviderOptionsDTO{ExitMode: tequilapi.ExitUserspace, PricePerHour: "0.3", PricePerGiB: "0.9", MaxSessions: 2, MonthlyQuota: "1GiB"}
	if _, err := api.StartService(ctx, tequilapi.ServiceStartRequest{Provider: &opts}); err != nil {
		t.Fatalf("PUT /service with options: %v", err)
	}
	stop()

	// Run 3: back with those options; the price changes.
	api, stop = start()
	caps := serving(api)
	if !strings.EqualFold(caps.Provider, provID.Hex()) || caps.MaxSessions != 2 || caps.Quota.Limit != 1<<30 {
		t.Fatalf("after a restart, caps %+v; want the provider %s with 2 sessions, 1 GiB", caps, provID.Hex())
	}
	if st := state(api, tequilapi.ProviderOn); st.Options.PricePerHour != "0.3" || st.Options.MaxSessions != 2 {
		t.Fatalf("after a restart, options %+v", st.Options)
	}
	announced := func(perHour string) {
		t.Helper()
		want, _ := money.ParseMYST(perHour)
		for {
			ps := c.Proposals(ctx, market.Filter{ProviderID: provID})
			if len(ps) == 1 && ps[0].Price.PerHour.Int().Cmp(want) == 0 {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("the consumer never sees the provider at %s MYST/h: %+v", perHour, ps)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	announced("0.3")
	if err := api.Do(ctx, "PUT", "/provider/price", tequilapi.PriceRequest{PerHour: "0.35", PerGiB: "0.9"}, nil); err != nil {
		t.Fatal(err)
	}
	stop()

	// Run 4: the changed price is remembered with the options.
	api, stop = start()
	defer stop()
	serving(api)
	if st := state(api, tequilapi.ProviderOn); st.Options.PricePerHour != "0.35" || st.Options.MaxSessions != 2 {
		t.Fatalf("after a price change and a restart, options %+v", st.Options)
	}
	announced("0.35")
}

// providerBed is a devnet without providers, a consumer on it, and the
// configuration of a provider daemon (the default identity of its data
// dir, unlocked with its passphrase file; located in FR; its API on
// host) that serves no provider yet but has the provider flags of `myst
// daemon` (DaemonProvider.Defaults).
type providerBed struct {
	devnet   *Devnet
	consumer *Consumer
	provider common.Address
	cfg      DaemonConfig
}

// newProviderBed starts the devnet and consumer, stopped when the test
// ends.
func newProviderBed(t *testing.T, ctx context.Context, host string) providerBed {
	t.Helper()
	log := testLog()
	d, err := StartDevnet(ctx, DevnetConfig{DataDir: t.TempDir(), Providers: []ProviderSpec{}, Payment: testPayment, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	c, err := d.StartConsumer(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	dd := t.TempDir()
	id, pass, _ := newDaemonIdentity(t, ctx, dd)
	return providerBed{devnet: d, consumer: c, provider: id, cfg: DaemonConfig{
		DataDir: dd, LightScrypt: true, Log: log,
		API:   tequilapi.Config{Address: host, Port: freePort(t, host), PasswordFile: filepath.Join(dd, tequilapi.PasswordFileName), Version: "ui-test"},
		Chain: ChainConfig{RPC: d.Chain.URL(), Deployment: d.DeploymentPath(), Tx: TxOptional},
		P2P:   NetworkConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: []peer.AddrInfo{d.Boot.AddrInfo()}, ChainID: d.Chain.Deployment().ChainID},
		Provider: DaemonProvider{
			Identity: IdentityRef{PassphraseFile: pass},
			Location: LocationConfig{Override: geoip.Override{Country: "FR"}},
			Defaults: ServiceOptions{Serve: ServeOptions{HermesURL: d.Hermes.URL(), ExitMode: "userspace", Advertise: "127.0.0.1",
				PriceHour: "0.005", PriceGiB: "0.1", PayInterval: testPayment.Interval, PayGrace: testPayment.Grace}},
		},
	}}
}

// TestProviderStateRecord: the remembered state round-trips, and a
// record this binary cannot read is refused in words.
func TestProviderStateRecord(t *testing.T) {
	ctx := context.Background()
	db, err := storage.Open(filepath.Join(t.TempDir(), storage.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, found, err := loadProviderState(ctx, db); found || err != nil {
		t.Fatalf("empty database: found %t, %v", found, err)
	}
	req := &tequilapi.ServiceStartRequest{Provider: &tequilapi.ProviderOptionsDTO{ExitMode: "userspace", PricePerHour: "1", PricePerGiB: "2"}}
	if err := saveProviderState(ctx, db, providerState{State: tequilapi.ProviderOff, Request: req}); err != nil {
		t.Fatal(err)
	}
	st, found, err := loadProviderState(ctx, db)
	if err != nil || !found || st.State != tequilapi.ProviderOff || st.Request.Provider.PricePerGiB != "2" {
		t.Fatalf("round trip: %+v %t %v", st, found, err)
	}
	for _, bad := range []string{`{"state":"maybe"}`, `{"state":"on","extra":1}`, `[`} {
		if err := db.PutSetting(ctx, providerStateSetting, []byte(bad)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := loadProviderState(ctx, db); err == nil || !strings.Contains(err.Error(), "provider state") {
			t.Errorf("record %s: %v, want an error naming the provider state", bad, err)
		}
	}
}

// TestNetAdminCapability: kernel tunnels need CAP_NET_ADMIN and the ip
// and nft commands; each missing one is named.
func TestNetAdminCapability(t *testing.T) {
	ok := func() error { return nil }
	found := func(string) (string, error) { return "/usr/sbin/x", nil }
	if c := netAdminCapability(ok, found); !c.Available || c.Reason != "" {
		t.Fatalf("everything present: %+v", c)
	}
	noNft := func(cmd string) (string, error) {
		if cmd == "nft" {
			return "", errors.New("not found")
		}
		return "/usr/sbin/ip", nil
	}
	noCap := func() error { return errors.New("kernel mode needs CAP_NET_ADMIN") }
	c := netAdminCapability(noCap, noNft)
	if c.Available || !strings.Contains(c.Reason, "CAP_NET_ADMIN") || !strings.Contains(c.Reason, "nft") || strings.Contains(c.Reason, "the ip command") {
		t.Fatalf("no capability, no nft: %+v", c)
	}
}
