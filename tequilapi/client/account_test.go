package client

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/tequilapi"
)

// startAccountServer runs a real Tequilapi server with the identity and
// account routes; chains gives the account routes their chain.
func startAccountServer(t *testing.T, chains tequilapi.ChainSource) (*Client, *identity.Manager) {
	t.Helper()
	url, pw, ids := serveIdentities(t, "", func(ids *identity.Manager, log *slog.Logger) []tequilapi.Route {
		return tequilapi.AccountRoutes(ids, chains, log)
	})
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := New(url, hc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(context.Background(), pw); err != nil {
		t.Fatal(err)
	}
	return c, ids
}

func TestAccountClientOnDevChain(t *testing.T) {
	ctx := testenv.Long(t, "starts a dev chain", 2*time.Minute)
	dc := devchaintest.Start(ctx, t, devchain.Config{Log: slog.New(slog.DiscardHandler)})
	cc := devchaintest.Client(ctx, t, dc, slog.New(slog.DiscardHandler))
	dep := dc.Deployment()
	c, ids := startAccountServer(t, tequilapi.ChainSourceFunc(func(context.Context) (tequilapi.AccountChain, common.Address, error) {
		return cc, dep.Hermes, nil
	}))
	id, err := c.CreateIdentity(ctx, "pw", true)
	if err != nil {
		t.Fatal(err)
	}
	addr := common.HexToAddress(id.ID)
	if _, err := c.TopUp(ctx, addr, "1.2.3", false); !IsCode(err, tequilapi.CodeValidation) {
		t.Fatalf("bad amount: %v", err)
	}
	tr, err := c.TopUp(ctx, addr, "2.25", false)
	if err != nil || tr.ChannelBalance != "2.25" || !tr.Minted {
		t.Fatalf("TopUp = %+v, %v", tr, err)
	}
	ids.Lock(addr)
	if _, err := c.Register(ctx, addr, tequilapi.RegisterRequest{}); !IsCode(err, tequilapi.CodeIdentityLocked) {
		t.Fatalf("Register locked: %v", err)
	}
	if _, err := c.Unlock(ctx, addr, "pw"); err != nil {
		t.Fatal(err)
	}
	ben := common.HexToAddress("0x00000000000000000000000000000000000be4e1")
	rr, err := c.Register(ctx, addr, tequilapi.RegisterRequest{Beneficiary: ben.Hex()})
	if err != nil || rr.Channel != dep.ChannelAddress(addr).Hex() {
		t.Fatalf("Register = %+v, %v", rr, err)
	}
	a, err := c.Account(ctx, addr)
	if err != nil || !a.Registered || a.Beneficiary != ben.Hex() || a.ChannelBalance != "2.25" || a.ChannelBalanceWei != "2250000000000000000" {
		t.Fatalf("Account = %+v, %v", a, err)
	}
	ben2 := common.HexToAddress("0x00000000000000000000000000000000000be4e2")
	if br, err := c.SetBeneficiary(ctx, addr, ben2); err != nil || br.Beneficiary != ben2.Hex() {
		t.Fatalf("SetBeneficiary = %+v, %v", br, err)
	}
	// A hermes promise to this provider, settled through the client.
	var pre [32]byte
	if _, err := rand.Read(pre[:]); err != nil {
		t.Fatal(err)
	}
	st := chain.Settlement{Kind: chain.KindProvider, ChainID: dep.ChainID, Contract: dep.Hermes, Provider: addr, Preimage: pre,
		Promise: payments.Promise{ChainID: new(big.Int).SetUint64(dep.ChainID), ChannelID: payments.ProviderChannelID(addr, dep.Hermes), Amount: money.MYST(2), Fee: new(big.Int), Hashlock: payments.Hashlock(pre[:])}}
	if err := st.Promise.Sign(identity.NewKeySigner(devchain.DevKey(devchain.HermesAccount))); err != nil {
		t.Fatal(err)
	}
	sr, err := c.SettlePromise(ctx, addr, st)
	if err != nil || sr.Paid != "2" || sr.Beneficiary != ben2.Hex() {
		t.Fatalf("SettlePromise = %+v, %v", sr, err)
	}
	if _, err := c.SettlePromise(ctx, addr, st); !IsCode(err, tequilapi.CodeChainReverted) || !strings.Contains(err.Error(), "NothingToSettle") {
		t.Fatalf("second SettlePromise: %v", err)
	}
	if _, err := c.Account(ctx, common.Address{1}); !IsCode(err, tequilapi.CodeNotFound) {
		t.Fatalf("unknown identity: %v", err)
	}
}

func TestAccountClientWithoutChain(t *testing.T) {
	c, _ := startAccountServer(t, tequilapi.ChainSourceFunc(func(context.Context) (tequilapi.AccountChain, common.Address, error) {
		return nil, common.Address{}, tequilapi.ErrChainUnavailable
	}))
	ctx := context.Background()
	id, err := c.CreateIdentity(ctx, "pw", true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Account(ctx, common.HexToAddress(id.ID))
	var e *Error
	if !IsCode(err, tequilapi.CodeChainUnavailable) || !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("Account without chain: %v", err)
	}
}
