package node

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/tequilapi"
)

// TestChainConnLazy: the daemon's chain source reports chain_unavailable
// while the deployment is missing or the RPC does not answer, connects once
// both are there, and is read-only on a non-dev deployment without a key.
func TestChainConnLazy(t *testing.T) {
	ctx, dc := testDevChain(t)
	log := slog.New(slog.DiscardHandler)
	rpc := dc.URL()
	dep := dc.Deployment()
	depFile := filepath.Join(t.TempDir(), "deployment.json")
	if err := dep.Save(depFile); err != nil {
		t.Fatal(err)
	}
	later := filepath.Join(t.TempDir(), "later.json")
	cc := NewChainConn(ChainConfig{RPC: rpc, Deployment: later, Log: log})
	defer cc.Close()
	if _, _, err := cc.Chain(ctx); !errors.Is(err, tequilapi.ErrChainUnavailable) || !strings.Contains(err.Error(), "later.json") {
		t.Fatalf("missing deployment: %v", err)
	}
	if err := dep.Save(later); err != nil {
		t.Fatal(err)
	}
	c, h, err := cc.Chain(ctx)
	if err != nil || h != dep.Hermes || c.Transactor() == nil || c.Transactor().Address() != devchain.DevAddress(devchain.TransactorAccount) {
		t.Fatalf("connected: %v %v %v", c, h, err)
	}
	if c2, _, err := cc.Chain(ctx); err != nil || c2 != c {
		t.Fatalf("second use: %v, same client %v", err, c2 == c)
	}

	down := NewChainConn(ChainConfig{RPC: "http://127.0.0.1:" + strconv.Itoa(servetest.FreePort(t)), Deployment: depFile, Log: log})
	if _, _, err := down.Chain(ctx); !errors.Is(err, tequilapi.ErrChainUnavailable) {
		t.Fatalf("RPC down: %v", err)
	}

	// Not a dev deployment and no key: read-only.
	prod := dep
	prod.Faucet = false
	prodFile := filepath.Join(t.TempDir(), "prod.json")
	if err := prod.Save(prodFile); err != nil {
		t.Fatal(err)
	}
	ro := NewChainConn(ChainConfig{RPC: rpc, Deployment: prodFile, Log: log})
	defer ro.Close()
	if c, _, err := ro.Chain(ctx); err != nil || c.Transactor() != nil {
		t.Fatalf("read-only: %v %v", c, err)
	}
	other := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	withHermes := NewChainConn(ChainConfig{RPC: rpc, Deployment: depFile, Hermes: other, Log: log})
	defer withHermes.Close()
	if _, h, err := withHermes.Chain(ctx); err != nil || h != other {
		t.Fatalf("--chain.hermes: %v %v", h, err)
	}
}

// TestDeployContractsRefusesBadParams: the MYST amounts and the holder
// are checked, naming their flags, before any key is read or chain dialled.
func TestDeployContractsRefusesBadParams(t *testing.T) {
	for flag, cfg := range map[string]DeployConfig{
		"--supply":           {Supply: "1e3"},
		"--min-hermes-stake": {MinHermesStake: "-1"},
		"--holder":           {Holder: "0x12"},
	} {
		if _, err := DeployContracts(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s: err = %v", flag, err)
		}
	}
	if _, err := DeployContracts(context.Background(), DeployConfig{Supply: "5", MinHermesStake: "100", Holder: "0x00000000000000000000000000000000000000aa"}); err == nil || !strings.Contains(err.Error(), "--chain.transactor-key-file") {
		t.Errorf("good params, no key: %v", err)
	}
}
