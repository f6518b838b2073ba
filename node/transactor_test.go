package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/transactor"
	"github.com/openmyst/openmyst/tunnel"
)

// TestGaslessProvider: a provider identity created fresh (no ETH, no MYST)
// registers through the devnet's transactor, serves a paid session and
// settles through the transactor; it never sends a transaction. Its
// registration fee is deferred on chain and taken from the settlement:
// the beneficiary receives the promise minus the hermes fee, the promise's
// transactor fee and the registration fee taken; the transactor both fees.
func TestGaslessProvider(t *testing.T) {
	ctx := testenv.Long(t, "devnet test; skipped with -short", 2*time.Minute)
	body := payload(1 << 20)
	srv, rule := startServer(t, body)
	key := keytest.Key(t)
	fresh := identity.NewKeySigner(key)
	d := startTestDevnet(ctx, t, DevnetConfig{
		DataDir: t.TempDir(), Providers: DefaultProviders[:1], Allow: []tunnel.Rule{rule}, Payment: testPayment, Log: testLog(),
		HermesMinFee: e2eConsumerFee, ProviderPromiseFee: e2eProviderFee, RegistrationFee: e2eRegistrationFee,
		Gasless: true,
		// The provider's own chain client sends from its own (empty)
		// key, as `myst service` does: only the relay can pay its gas.
		AdjustProvider: map[int]func(*ProviderConfig){0: func(pc *ProviderConfig) {
			pc.Signer = fresh
			tx, err := chain.NewTransactor(ctx, pc.Chain.Backend(), key, testLog())
			if err != nil {
				t.Fatal(err)
			}
			if pc.Chain, err = chain.NewClient(ctx, pc.Chain.Backend(), pc.Chain.Deployment(), tx, testLog()); err != nil {
				t.Fatal(err)
			}
		}},
	})
	prov := d.Providers[0]
	if prov.Address() != fresh.Address() {
		t.Fatalf("provider %s, want the fresh identity", prov.Address().Hex())
	}
	if ok, err := d.Client.IsRegistered(ctx, fresh.Address()); err != nil || !ok {
		t.Fatalf("fresh provider registered: %v %v", ok, err)
	}
	c, err := d.StartConsumer(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WaitProposals(ctx, market.Filter{}, 1); err != nil {
		t.Fatal(err)
	}
	ended := endedWatcher(prov)
	conn, err := c.Connect(ctx, market.Filter{Country: "DE"}, consumer.Options{SOCKSListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	// Watched: a failed download ("unexpected EOF" was seen once) logs
	// both sides' view of the session every second.
	got, err := watchedDownload(t, ctx, conn.SOCKSAddr(), srv.URL, func() string { return sessionState(conn, prov) })
	if err != nil || sha256.Sum256(got) != sha256.Sum256(body) {
		t.Fatalf("download through the tunnel: %d bytes, %v", len(got), err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for conn.PayerStats().Invoices < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d invoices paid", conn.PayerStats().Invoices)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := conn.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, ended, conn.ID(), 10*time.Second)
	paid := conn.PayerStats().Paid

	txAddr := d.Transactor.Service.Address()
	txBefore := tokenBalance(t, ctx, d.Client, txAddr, txAddr)
	s, err := prov.Settle(ctx)
	if err != nil {
		t.Fatalf("gasless settlement: %v", err)
	}
	if s.Amount.Cmp(paid) != 0 {
		t.Fatalf("settled %s, consumer paid %s", s.Amount, paid)
	}
	hs, err := d.Client.HermesState(ctx, d.Chain.Deployment().Hermes)
	if err != nil {
		t.Fatal(err)
	}
	hermesFee := new(big.Int).Div(new(big.Int).Mul(paid, big.NewInt(int64(hs.FeeBps))), big.NewInt(10000))
	// The deferred registration fee comes out of the net payout, up to all of it.
	net := new(big.Int).Sub(new(big.Int).Sub(paid, hermesFee), e2eProviderFee)
	taken := new(big.Int).Set(e2eRegistrationFee)
	if taken.Cmp(net) > 0 {
		taken.Set(net)
	}
	want := new(big.Int).Sub(net, taken)
	if got := tokenBalance(t, ctx, d.Client, fresh.Address(), fresh.Address()); got.Cmp(want) != 0 {
		t.Fatalf("beneficiary got %s, want %s (net %s minus the registration fee taken, %s)", got, want, net, taken)
	}
	if got := new(big.Int).Sub(tokenBalance(t, ctx, d.Client, txAddr, txAddr), txBefore); got.Cmp(new(big.Int).Add(e2eProviderFee, taken)) != 0 {
		t.Fatalf("transactor earned %s, want the promise fee %s plus the registration fee taken %s", got, e2eProviderFee, taken)
	}
	if _, debt, err := d.Client.RegistrationDebt(ctx, fresh.Address()); err != nil || debt.Cmp(new(big.Int).Sub(e2eRegistrationFee, taken)) != 0 {
		t.Fatalf("registration debt left %s (%v), want %s", debt, err, new(big.Int).Sub(e2eRegistrationFee, taken))
	}
	eth, err := d.Chain.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	n, err := eth.NonceAt(ctx, fresh.Address(), nil)
	if err != nil {
		t.Fatal(err)
	}
	bal, err := eth.BalanceAt(ctx, fresh.Address(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || bal.Sign() != 0 {
		t.Fatalf("the provider sent %d transactions and holds %s wei ETH; want none", n, bal)
	}
}

// TestRelayAccountAndVouchers: a fresh local identity registers through
// the transactor (RelayAccount "register"), a sponsor's voucher
// (SignVoucher with a budget) is redeemed once and refused the second time.
func TestRelayAccountAndVouchers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dc := devchaintest.Start(ctx, t, devchain.Config{Log: testLog()})
	dir := t.TempDir()
	depFile := filepath.Join(dir, "deployment.json")
	if err := dc.Deployment().Save(depFile); err != nil {
		t.Fatal(err)
	}
	c, err := OpenChain(ctx, ChainConfig{RPC: dc.URL(), Deployment: depFile, Tx: TxRequired, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr, err := StartTransactor(ctx, TransactorConfig{Chain: c.Client, Signer: identity.NewKeySigner(devchain.DevKey(devchain.TransactorAccount)),
		Hermes: c.Hermes, Fees: transactor.Fees{Register: money.MYST(1)}, StorePath: filepath.Join(dir, "tx.db"), Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	a := keytest.Signer(t)
	out, err := relayAccount(ctx, c, tr.URL(), a, "register", "")
	if err != nil || !strings.Contains(out, "through the transactor") {
		t.Fatalf("register: %q %v", out, err)
	}
	if _, debt, err := c.Client.RegistrationDebt(ctx, a.Address()); err != nil || debt.Cmp(money.MYST(1)) != 0 {
		t.Fatalf("deferred registration fee %s %v, want 1 MYST", debt, err)
	}
	// The sponsor is dev account 7 with 20 MYST, allowing 10.
	keyFile := filepath.Join(dir, "sponsor.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(crypto.FromECDSA(devchain.DevKey(7)))), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.Mint(ctx, devchain.DevAddress(7), money.MYST(20)); err != nil {
		t.Fatal(err)
	}
	sp, err := OpenChain(ctx, ChainConfig{RPC: dc.URL(), Deployment: depFile, TransactorKeyFile: keyFile, Tx: TxRequired, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	out, err = SignVoucher(ctx, sp, keyFile, tr.URL(), "2", "10", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	code := lines[len(lines)-1]
	b := keytest.Signer(t)
	if out, err := relayAccount(ctx, c, tr.URL(), b, "redeem", code); err != nil || !strings.Contains(out, "starter top-up") {
		t.Fatalf("redeem: %q %v", out, err)
	}
	if st, err := c.Client.ChannelState(ctx, c.Client.ChannelAddress(b.Address(), c.Hermes)); err != nil || st.Balance.Cmp(money.MYST(2)) != 0 || !st.Deployed {
		t.Fatalf("redeemer's channel %+v %v, want deployed with 2 MYST", st, err)
	}
	if _, err := relayAccount(ctx, c, tr.URL(), keytest.Signer(t), "redeem", code); err == nil || !strings.Contains(err.Error(), transactor.CodeRedeemed) {
		t.Fatalf("second redemption: %v, want %s", err, transactor.CodeRedeemed)
	}
}
