package node

import (
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/simtest"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/storage"
)

// nonDevChainIDs are chain ids of real networks (Ethereum, Optimism,
// Polygon, Base, Polygon Amoy, Sepolia) and one nobody uses.
var nonDevChainIDs = []uint64{1, 10, 137, 8453, 80002, 11155111, 1338}

// realChain is a chain client of a simulated chain with id id and the
// contracts deployed (no faucet): a chain that answers a real chain id.
func realChain(t *testing.T, id uint64) *chain.Client {
	t.Helper()
	cfg := chain.DevChainConfig()
	cfg.ChainID = new(big.Int).SetUint64(id)
	k := keytest.Key(t)
	b := simtest.New(t, cfg, k)
	tx, err := chain.NewTransactor(t.Context(), b, k, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	dep, err := chain.Deploy(t.Context(), tx, chain.DeployParams{MinHermesStake: money.MYST(10), ExitTimelock: time.Hour, FeeNoticeDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := chain.NewClient(t.Context(), b, dep, tx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startProviderOn starts a provider with cfg on chain c (a fresh signer
// and data dir) and closes it if it started.
func startProviderOn(t *testing.T, c *chain.Client, cfg ProviderConfig) error {
	cfg.Signer, cfg.Chain, cfg.DataDir = keytest.Signer(t), c, t.TempDir()
	p, err := StartProvider(t.Context(), cfg)
	if p != nil {
		_ = p.Close()
	}
	return err
}

// allRefused is errs joined when each is a refusal (ErrDevnetShortcut),
// else the first that is not, without the sentinel.
func allRefused(errs ...error) error {
	for _, err := range errs {
		if !errors.Is(err, ErrDevnetShortcut) {
			return fmt.Errorf("not refused: %v", err)
		}
	}
	return errors.Join(errs...)
}

// TestDevnetShortcutsOnlyOnDevChains enumerates every devnet shortcut a
// node has (docs/node.md, "Devnet shortcuts") and decides it for each
// dev chain id, where the shortcut must be taken (devnets and `myst
// devnet` rely on it), and for real chain ids, where it must not be:
// either the real network's value is picked, or the node refuses with
// ErrDevnetShortcut (or ErrDevKeysRefused) naming the flag to set. Where
// a role takes the shortcut, that role also runs against a chain whose
// RPC answers a real chain id and must refuse before anything else.
func TestDevnetShortcutsOnlyOnDevChains(t *testing.T) {
	loopbackICE, err := ICESettings{Servers: []string{"stun:127.0.0.1:3478", "stun:127.0.0.1:3479"}}.Config()
	if err != nil {
		t.Fatal(err)
	}
	privateICE, err := ICESettings{Servers: []string{"stun:10.98.0.4:3478", "stun:10.98.0.4:3479"}}.Config()
	if err != nil || !privateICE.Policy.AllowPrivate {
		t.Fatalf("private servers: %v", err)
	}
	real := realChain(t, 80002)
	faucet := func(id uint64) chain.Deployment { return chain.Deployment{ChainID: id, Faucet: true} }
	for _, s := range []struct {
		name string
		// took decides the shortcut on chain id: whether it was taken,
		// and the error refusing it.
		took func(t *testing.T, id uint64) (bool, error)
		// flag, when set, is what a refusal must name; empty: off dev
		// chains the real network's value is picked without an error.
		flag string
		// role, when set, runs the role that takes the shortcut against
		// a chain whose RPC answers a real chain id: it must refuse,
		// naming flag, before it does anything else. (Its remote URLs
		// are http://0.0.0.0:1: not loopback to the checks, yet a role
		// that failed to refuse dials nothing off this machine.)
		role func(t *testing.T, c *chain.Client) error
	}{
		{"--wg.advertise unset, no ICE server: 127.0.0.1", func(t *testing.T, id uint64) (bool, error) {
			cfg := ProviderConfig{WGPort: 51820}
			err := resolveAdvertise(id, &cfg)
			return cfg.AdvertiseAddr == netip.MustParseAddr(LoopbackAdvertise) && !cfg.AdvertiseAuto, err
		}, "", nil},
		{"--wg.advertise unset, loopback STUN servers: 127.0.0.1", func(t *testing.T, id uint64) (bool, error) {
			cfg := ProviderConfig{WGPort: 51820, ICE: loopbackICE}
			err := resolveAdvertise(id, &cfg)
			return cfg.AdvertiseAddr.IsLoopback() && !cfg.AdvertiseAuto, err
		}, "", nil},
		{"--wg.advertise unset, --wg.port 0: 127.0.0.1", func(t *testing.T, id uint64) (bool, error) {
			cfg := ProviderConfig{}
			err := resolveAdvertise(id, &cfg)
			return cfg.AdvertiseAddr.IsLoopback(), err
		}, "--wg.advertise", func(t *testing.T, c *chain.Client) error {
			return startProviderOn(t, c, ProviderConfig{HermesURL: "https://127.0.0.1:1"})
		}},
		{"--wg.advertise 127.0.0.1", func(t *testing.T, id uint64) (bool, error) {
			cfg := ProviderConfig{WGPort: 51820, AdvertiseAddr: netip.MustParseAddr("127.0.0.1")}
			err := resolveAdvertise(id, &cfg)
			return err == nil && cfg.AdvertiseAddr.IsLoopback(), err
		}, "--wg.advertise", func(t *testing.T, c *chain.Client) error {
			return startProviderOn(t, c, ProviderConfig{HermesURL: "https://127.0.0.1:1", WGPort: 51820, AdvertiseAddr: netip.MustParseAddr("127.0.0.1")})
		}},
		{"--hermes.url unset: the loopback hermes", func(t *testing.T, id uint64) (bool, error) {
			u, err := hermesClientURL(id, "", false)
			return u == DevHermesURL, err
		}, "--hermes.url", func(t *testing.T, c *chain.Client) error {
			// myst service settle: the settler of the provider's database.
			db, err := storage.Open(filepath.Join(t.TempDir(), storage.FileName))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			_, err = NewSettler(t.Context(), db, c, common.Address{1}, "", HermesTLS{}, common.Address{2})
			return allRefused(err, startProviderOn(t, c, ProviderConfig{WGPort: 51820}))
		}},
		{"--hermes.insecure-http: plain HTTP to a remote hermes", func(t *testing.T, id uint64) (bool, error) {
			u, err := hermesClientURL(id, "http://10.0.0.5:4060", true)
			return u != "", err
		}, "--hermes.insecure-http", func(t *testing.T, c *chain.Client) error {
			return startProviderOn(t, c, ProviderConfig{HermesURL: "http://0.0.0.0:1", HermesTLS: HermesTLS{AllowInsecureHTTP: true}, WGPort: 51820})
		}},
		{"--transactor http://remote: plain HTTP to a remote transactor", func(t *testing.T, id uint64) (bool, error) {
			err := transactorClientURL(id, "http://10.0.0.5:4070")
			return err == nil, err
		}, "--transactor", func(t *testing.T, c *chain.Client) error {
			_, err := Relay(&Chain{Client: c}, "http://0.0.0.0:1")
			return allRefused(err, startProviderOn(t, c, ProviderConfig{HermesURL: "https://127.0.0.1:1", WGPort: 51820, TransactorURL: "http://0.0.0.0:1"}))
		}},
		{"--hermes.insecure-http: plain HTTP hermes API on 0.0.0.0", func(t *testing.T, id uint64) (bool, error) {
			err := checkPlainListen(id, "0.0.0.0:4060", "hermes.insecure-http")
			return err == nil, err
		}, "--hermes.insecure-http", func(t *testing.T, c *chain.Client) error {
			h, err := StartHermes(t.Context(), HermesConfig{Chain: c, Operator: keytest.Signer(t), DSN: "unused", Listen: "0.0.0.0:0", InsecureHTTP: true})
			if h != nil {
				_ = h.Close()
			}
			return err
		}},
		{"--transactor.insecure-http: plain HTTP transactor API on 0.0.0.0", func(t *testing.T, id uint64) (bool, error) {
			err := checkPlainListen(id, "0.0.0.0:4070", "transactor.insecure-http")
			return err == nil, err
		}, "--transactor.insecure-http", func(t *testing.T, c *chain.Client) error {
			tr, err := StartTransactor(t.Context(), TransactorConfig{Chain: c, Listen: "0.0.0.0:0", InsecureHTTP: true})
			if tr != nil {
				_ = tr.Close()
			}
			return err
		}},
		{"--ice.server all on loopback: loopback candidates only", func(t *testing.T, id uint64) (bool, error) {
			ic, err := iceForChain(id, loopbackICE)
			return ic != nil && ic.Loopback, err
		}, "--ice.server", func(t *testing.T, c *chain.Client) error {
			cons, err := StartConsumer(t.Context(), ConsumerConfig{Signer: keytest.Signer(t), Chain: c, DataDir: t.TempDir(), ICE: loopbackICE})
			if cons != nil {
				_ = cons.Close()
			}
			return allRefused(err, startProviderOn(t, c, ProviderConfig{HermesURL: "https://127.0.0.1:1", WGPort: 51820, ICE: loopbackICE}))
		}},
		{"--ice.server all on private addresses: private candidates", func(t *testing.T, id uint64) (bool, error) {
			ic, err := iceForChain(id, privateICE)
			return ic != nil && ic.Policy.AllowPrivate, err
		}, "", nil},
		{"--keystore.light-scrypt: weak key encryption", func(t *testing.T, id uint64) (bool, error) {
			err := checkLightScrypt(id, true)
			return err == nil, err
		}, "--keystore.light-scrypt", func(t *testing.T, c *chain.Client) error {
			return RunDaemon(t.Context(), DaemonConfig{DataDir: t.TempDir(), LightScrypt: true, P2P: NetworkConfig{ChainID: c.ChainID().Uint64()}})
		}},
		{"--p2p.public-addrs-only unset: private and loopback libp2p addresses", func(t *testing.T, id uint64) (bool, error) {
			return !publicAddrsOnly(id, false), nil
		}, "", nil},
		{"myst chain deploy --faucet: a token anyone may mint", func(t *testing.T, id uint64) (bool, error) {
			err := checkFaucetDeploy(id, true)
			return err == nil, err
		}, "--faucet", nil},
		{"the public dev transactor key (faucet deployment)", func(t *testing.T, id uint64) (bool, error) {
			k, err := TransactorKey("", faucet(id))
			return k != nil, err
		}, "--chain.transactor-key-file", nil},
		{"the public dev hermes operator key (faucet deployment)", func(t *testing.T, id uint64) (bool, error) {
			err := DevKeysAllowed(faucet(id))
			return err == nil, err
		}, "--hermes.operator", nil},
		{"the 200 ms GossipSub heartbeat", func(t *testing.T, id uint64) (bool, error) {
			return GossipHeartbeat(id) == devHeartbeat, nil
		}, "", nil},
		{"0 confirmations by default (faucet deployment)", func(t *testing.T, id uint64) (bool, error) {
			n, err := ConfirmationsFor(-1, devDeployment(faucet(id)))
			return n == 0, err
		}, "", nil},
		{"topping up from the dev faucet (faucet deployment)", func(t *testing.T, id uint64) (bool, error) {
			return faucet(id).DevFaucet(), nil
		}, "", nil},
		{"--network: 127.0.0.1 advertise, private addresses, no port mapping", func(t *testing.T, id uint64) (bool, error) {
			v := network.FlagValues(&network.Network{ChainID: id, Hermes: []network.Hermes{{URL: "https://hermes.example.org"}}}, true, false)
			return v[network.AdvertiseFlag] != network.AdvertiseAuto || v[network.PublicAddrsOnlyFlag] != "true" || v[network.PortMapFlag] != "true", nil
		}, "", nil},
	} {
		if s.role != nil {
			err := s.role(t, real)
			switch {
			case !errors.Is(err, ErrDevnetShortcut):
				t.Errorf("%s: the role on chain %d: err %v, want a refusal", s.name, real.ChainID(), err)
			case !strings.Contains(err.Error(), s.flag):
				t.Errorf("%s: the role on chain %d: %q does not name %s", s.name, real.ChainID(), err, s.flag)
			}
		}
		for _, id := range chain.DevChainIDs {
			took, err := s.took(t, id)
			if err != nil || !took {
				t.Errorf("%s on dev chain %d: taken %v, err %v; devnets rely on it", s.name, id, took, err)
			}
		}
		for _, id := range nonDevChainIDs {
			took, err := s.took(t, id)
			switch {
			case took && err == nil:
				t.Errorf("%s: taken on chain %d, which is not a dev chain", s.name, id)
			case s.flag == "" && err != nil:
				t.Errorf("%s on chain %d: %v; want the real network's value", s.name, id, err)
			case s.flag != "" && !errors.Is(err, ErrDevnetShortcut) && !errors.Is(err, ErrDevKeysRefused):
				t.Errorf("%s on chain %d: err %v, want a refusal", s.name, id, err)
			case s.flag != "" && !strings.Contains(err.Error(), s.flag):
				t.Errorf("%s on chain %d: %q does not name %s", s.name, id, err, s.flag)
			}
		}
	}
}
