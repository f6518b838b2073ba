package transactor

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"golang.org/x/time/rate"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/bindings"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// Dev accounts of these tests: the transactor's paying key and a sponsor.
const (
	relayAccount   = 6
	sponsorAccount = 7
)

var (
	// looseLimits keep the functional tests below the abuse limits.
	looseLimits = Limits{PerSource: rate.Inf, PerIdentity: rate.Inf, ZeroFeeRegistrations: rate.Inf, MaxInFlight: 4}
	testFees    = Fees{Register: money.MYST(1), Beneficiary: big.NewInt(3e15), Settle: big.NewInt(2e16)}
	quiet       = slog.New(slog.DiscardHandler)
)

// env is a dev chain (contracts and dev hermes) and a transactor service on it.
type env struct {
	dc   *devchain.Chain
	eth  *ethclient.Client
	dev  *chain.Client // faucet and reads (dev transactor account)
	svc  *Service
	srv  *httptest.Server
	cl   *Client
	dir  string
	stor *Store
}

func newEnv(t *testing.T, ctx context.Context, adjust func(*Config)) *env {
	t.Helper()
	dc := devchaintest.Start(ctx, t, devchain.Config{Log: quiet})
	eth, err := dc.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eth.Close)
	e := &env{dc: dc, eth: eth, dir: t.TempDir()}
	devTx, err := chain.NewTransactor(ctx, eth, devchain.DevKey(devchain.TransactorAccount), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if e.dev, err = chain.NewClient(ctx, eth, dc.Deployment(), devTx, quiet); err != nil {
		t.Fatal(err)
	}
	e.startService(t, ctx, adjust)
	return e
}

// startService (re)starts the service and its HTTP server on e's chain.
func (e *env) startService(t *testing.T, ctx context.Context, adjust func(*Config)) {
	t.Helper()
	if e.srv != nil {
		e.srv.Close()
		_ = e.stor.Close()
	}
	relayTx, err := chain.NewTransactor(ctx, e.eth, devchain.DevKey(relayAccount), quiet)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := chain.NewClient(ctx, e.eth, e.dc.Deployment(), relayTx, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if e.stor, err = OpenStore(filepath.Join(e.dir, "transactor.db")); err != nil {
		t.Fatal(err)
	}
	stor := e.stor
	t.Cleanup(func() { _ = stor.Close() })
	cfg := Config{Chain: relay, Signer: identity.NewKeySigner(devchain.DevKey(relayAccount)), Hermes: e.dc.Deployment().Hermes,
		Fees: testFees, Store: e.stor, Log: quiet, Limits: looseLimits}
	if adjust != nil {
		adjust(&cfg)
	}
	if e.svc, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.svc.Handler())
	t.Cleanup(e.srv.Close)
	if e.cl, err = NewClient(e.srv.URL, e.dc.Deployment(), nil); err != nil {
		t.Fatal(err)
	}
}

func (e *env) tokens(t *testing.T, ctx context.Context, a common.Address) *big.Int {
	t.Helper()
	b, err := e.dev.TokenBalance(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertNoGas checks a has never sent a transaction and holds no ETH.
func (e *env) assertNoGas(t *testing.T, ctx context.Context, a common.Address) {
	t.Helper()
	n, err := e.eth.NonceAt(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.eth.BalanceAt(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || b.Sign() != 0 {
		t.Fatalf("%s sent %d transactions and holds %s wei ETH; want none", a.Hex(), n, b)
	}
}

func (e *env) relayNonce(t *testing.T, ctx context.Context) uint64 {
	t.Helper()
	n, err := e.eth.NonceAt(ctx, e.svc.Address(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func apiCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// hermesPromise signs, as the dev hermes operator, a cumulative promise
// of amount on provider's channel with fee, and returns its settlement.
func (e *env) hermesPromise(t *testing.T, provider common.Address, amount, fee *big.Int) chain.Settlement {
	t.Helper()
	dep := e.dc.Deployment()
	r, lock, err := payments.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	p := payments.Promise{ChainID: new(big.Int).SetUint64(dep.ChainID), ChannelID: payments.ProviderChannelID(provider, dep.Hermes), Amount: amount, Fee: fee, Hashlock: lock}
	if err := p.Sign(identity.NewKeySigner(devchain.DevKey(devchain.HermesAccount))); err != nil {
		t.Fatal(err)
	}
	return chain.Settlement{Kind: chain.KindProvider, ChainID: dep.ChainID, Contract: dep.Hermes, Provider: provider, Promise: p, Preimage: r}
}

// TestZeroGasProviderRegistersAndSettles: an identity with no ETH and no
// MYST registers through the transactor (zero fee, zero stake) and settles
// a hermes promise through it; the transactor takes the promise's fee and
// the identity never sends a transaction. Settlements the chain would
// refuse, or whose fee is below the quote, are refused before any gas is
// spent.
func TestZeroGasProviderRegistersAndSettles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newEnv(t, ctx, nil)
	dep := e.dc.Deployment()
	prov := keytest.Signer(t)
	ben := keytest.Signer(t).Address()

	q, err := e.cl.Quote(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if q.Transactor != e.svc.Address() || q.Fees.Settle.Cmp(testFees.Settle) != 0 {
		t.Fatalf("quote %+v", q)
	}
	// A non-zero fee below the quote is refused.
	if _, err := e.cl.Register(ctx, q, prov, dep.Hermes, big.NewInt(1), true, ben); apiCode(err) != CodeFeeTooLow {
		t.Fatalf("register with a fee below the quote: %v, want %s", err, CodeFeeTooLow)
	}
	// The quoted fee from an empty channel cannot be paid now.
	if _, err := e.cl.Register(ctx, q, prov, dep.Hermes, q.Fees.Register, false, ben); apiCode(err) != CodeCannotPay {
		t.Fatalf("register with an unpayable fee: %v, want %s", err, CodeCannotPay)
	}
	fee, deferred := RegisterPlan(q, new(big.Int))
	if !deferred || fee.Cmp(testFees.Register) != 0 {
		t.Fatalf("plan for an empty channel: %s deferred %v", fee, deferred)
	}
	res, err := e.cl.Register(ctx, q, prov, dep.Hermes, fee, deferred, ben)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := e.dev.IsRegistered(ctx, prov.Address()); err != nil || !ok {
		t.Fatalf("registered: %v %v", ok, err)
	}
	if b, err := e.dev.Beneficiary(ctx, prov.Address()); err != nil || b != ben {
		t.Fatalf("beneficiary %s %v, want %s", b.Hex(), err, ben.Hex())
	}
	if res.Channel == nil || *res.Channel != e.dev.ChannelAddress(prov.Address(), dep.Hermes) {
		t.Fatalf("answer channel %v", res.Channel)
	}
	// Registering again: the Go check answers before any gas is spent.
	before := e.relayNonce(t, ctx)
	if _, err := e.cl.Register(ctx, q, prov, dep.Hermes, fee, true, ben); apiCode(err) != CodeConflict {
		t.Fatalf("second registration: %v, want %s", err, CodeConflict)
	}

	// The hermes holds consumers' money to pay providers from.
	if _, err := e.dev.Mint(ctx, dep.Hermes, money.MYST(50)); err != nil {
		t.Fatal(err)
	}
	low := e.hermesPromise(t, prov.Address(), money.MYST(2), big.NewInt(1e16))
	if _, err := e.cl.Settle(ctx, q, low); apiCode(err) != CodeFeeTooLow {
		t.Fatalf("settle with a fee below the quote: %v, want %s", err, CodeFeeTooLow)
	}
	// Signed by someone else than the operator: refused.
	forged := e.hermesPromise(t, prov.Address(), money.MYST(2), testFees.Settle)
	if err := forged.Promise.Sign(prov); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cl.Settle(ctx, q, forged); apiCode(err) != CodeRefused {
		t.Fatalf("settle a forged promise: %v, want %s", err, CodeRefused)
	}
	if n := e.relayNonce(t, ctx); n != before {
		t.Fatalf("refused calls cost gas: transactor nonce %d → %d", before, n)
	}

	// The registration fee is owed on chain; the first settlement's net
	// (1 MYST - 1% hermes fee - the settle fee) does not cover it, the
	// second pays the rest; the Go twin predicts every transfer.
	if to, debt, err := e.dev.RegistrationDebt(ctx, prov.Address()); err != nil || to != e.svc.Address() || debt.Cmp(testFees.Register) != 0 {
		t.Fatalf("registration debt %s to %s (%v), want %s to the transactor", debt, to.Hex(), err, testFees.Register)
	}
	// Only the hermes may take the debt: an outsider naming the real
	// operator is refused by the Registry.
	reg, err := bindings.NewRegistry(dep.Registry, e.eth)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.dev.Transactor().Send(ctx, "steal debt", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return reg.SettlementPayee(o, prov.Address(), money.MYST(5), dep.HermesOperator)
	})
	if !errors.Is(err, chain.ErrUnknownHermes) {
		t.Fatalf("settlementPayee from an outsider: %v, want UnknownHermes", err)
	}
	var st chain.Settlement
	for _, amount := range []*big.Int{money.MYST(1), money.MYST(2)} {
		st = e.hermesPromise(t, prov.Address(), amount, testFees.Settle)
		want, err := e.dev.ProviderPayoutNow(ctx, dep.Hermes, prov.Address(), st.Promise)
		if err != nil {
			t.Fatal(err)
		}
		relayBefore, benBefore := e.tokens(t, ctx, e.svc.Address()), e.tokens(t, ctx, ben)
		if _, err := e.cl.Settle(ctx, q, st); err != nil {
			t.Fatal(err)
		}
		if got := new(big.Int).Sub(e.tokens(t, ctx, ben), benBefore); got.Cmp(want.Beneficiary) != 0 {
			t.Fatalf("beneficiary got %s, the Go twin says %s", got, want.Beneficiary)
		}
		wantRelay := new(big.Int).Add(testFees.Settle, want.RegistrationFee)
		if got := new(big.Int).Sub(e.tokens(t, ctx, e.svc.Address()), relayBefore); got.Cmp(wantRelay) != 0 {
			t.Fatalf("transactor earned %s, want the promise fee and the registration fee taken, %s", got, wantRelay)
		}
		if want.RegistrationFee.Sign() == 0 {
			t.Fatalf("settling %s took no registration fee", amount)
		}
	}
	if _, debt, err := e.dev.RegistrationDebt(ctx, prov.Address()); err != nil || debt.Sign() != 0 {
		t.Fatalf("registration debt after two settlements: %s %v", debt, err)
	}
	// Settled in full: 2 MYST - hermes fees - two settle fees - the registration fee.
	hermesFee := new(big.Int).Div(new(big.Int).Mul(money.MYST(2), big.NewInt(int64(devchain.DevHermesFeeBps))), big.NewInt(10000))
	want := new(big.Int).Sub(money.MYST(2), hermesFee)
	want.Sub(want, new(big.Int).Mul(testFees.Settle, big.NewInt(2)))
	want.Sub(want, testFees.Register)
	if got := e.tokens(t, ctx, ben); got.Cmp(want) != 0 {
		t.Fatalf("beneficiary holds %s, want %s", got, want)
	}
	// The same promise again: nothing to settle, refused by the Go twin
	// of the contract before any gas is spent.
	before = e.relayNonce(t, ctx)
	// (the error is the Go twin's, not a revert from gas estimation).
	if _, err := e.cl.Settle(ctx, q, st); apiCode(err) != CodeRefused || !strings.Contains(err.Error(), "provider payout") {
		t.Fatalf("settle twice: %v, want %s from chain.ProviderPayoutOf", err, CodeRefused)
	}
	if n := e.relayNonce(t, ctx); n != before {
		t.Fatalf("a refused settlement cost gas: nonce %d → %d", before, n)
	}
	e.assertNoGas(t, ctx, prov.Address())
}

// TestBeneficiaryChange: a registered identity with a funded channel
// changes its beneficiary through the transactor, paying the fee from the
// channel; a replayed nonce and an expired quote are refused.
func TestBeneficiaryChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	now := time.Now()
	clock := func() time.Time { return now }
	e := newEnv(t, ctx, func(c *Config) { c.Now = func() time.Time { return clock() } })
	dep := e.dc.Deployment()
	id := keytest.Signer(t)
	ch := e.dev.ChannelAddress(id.Address(), dep.Hermes)
	if _, err := e.dev.Mint(ctx, ch, money.MYST(3)); err != nil {
		t.Fatal(err)
	}
	q, err := e.cl.Quote(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fee, deferred := RegisterPlan(q, money.MYST(3))
	if deferred {
		t.Fatal("a funded channel's registration planned deferred")
	}
	if _, err := e.cl.Register(ctx, q, id, dep.Hermes, fee, false, common.Address{}); err != nil {
		t.Fatal(err)
	}
	ben := keytest.Signer(t).Address()
	if _, err := e.cl.SetBeneficiary(ctx, q, id, ben, dep.Hermes, q.Fees.Beneficiary, 2); apiCode(err) != CodeConflict {
		t.Fatalf("wrong nonce: %v, want %s", err, CodeConflict)
	}
	if _, err := e.cl.SetBeneficiary(ctx, q, id, ben, dep.Hermes, q.Fees.Beneficiary, 1); err != nil {
		t.Fatal(err)
	}
	if b, _ := e.dev.Beneficiary(ctx, id.Address()); b != ben {
		t.Fatalf("beneficiary %s, want %s", b.Hex(), ben.Hex())
	}
	want := new(big.Int).Sub(new(big.Int).Sub(money.MYST(3), testFees.Register), testFees.Beneficiary)
	if got := e.tokens(t, ctx, ch); got.Cmp(want) != 0 {
		t.Fatalf("channel holds %s, want %s after both fees", got, want)
	}
	clock = func() time.Time { return now.Add(DefaultQuoteTTL + time.Second) }
	if _, err := e.cl.SetBeneficiary(ctx, q, id, id.Address(), dep.Hermes, q.Fees.Beneficiary, 2); apiCode(err) != CodeQuoteExpired {
		t.Fatalf("expired quote: %v, want %s", err, CodeQuoteExpired)
	}
	e.assertNoGas(t, ctx, id.Address())
}

// TestVoucherHonouredOnce: a sponsor's voucher registers a fresh consumer
// and tops its channel up from the sponsor's allowance; the same voucher is
// refused afterwards, also after the transactor restarts; expired vouchers
// and sponsors over their cap are refused.
func TestVoucherHonouredOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newEnv(t, ctx, func(c *Config) { c.MaxVouchersPerSponsor = 2 })
	dep := e.dc.Deployment()
	sponsor := identity.NewKeySigner(devchain.DevKey(sponsorAccount))
	spTx, err := chain.NewTransactor(ctx, e.eth, devchain.DevKey(sponsorAccount), quiet)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := chain.NewClient(ctx, e.eth, dep, spTx, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Mint(ctx, sponsor.Address(), money.MYST(100)); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Approve(ctx, e.svc.Address(), money.MYST(20)); err != nil {
		t.Fatal(err)
	}
	v, err := NewVoucher(sponsor, dep.ChainID, e.svc.Address(), money.MYST(5), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	alice := keytest.Signer(t)
	res, err := e.cl.Redeem(ctx, v.Code(), alice, dep.Hermes, common.Address{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.dev.IsRegistered(ctx, alice.Address()); !ok {
		t.Fatal("redeemer not registered")
	}
	if got := e.tokens(t, ctx, *res.Channel); got.Cmp(money.MYST(5)) != 0 {
		t.Fatalf("redeemer's channel holds %s, want the 5 MYST top-up", got)
	}
	e.assertNoGas(t, ctx, alice.Address())
	bob := keytest.Signer(t)
	if _, err := e.cl.Redeem(ctx, v.Code(), bob, dep.Hermes, common.Address{}); apiCode(err) != CodeRedeemed {
		t.Fatalf("second redemption: %v, want %s", err, CodeRedeemed)
	}
	e.startService(t, ctx, func(c *Config) { c.MaxVouchersPerSponsor = 2 })
	if _, err := e.cl.Redeem(ctx, v.Code(), bob, dep.Hermes, common.Address{}); apiCode(err) != CodeRedeemed {
		t.Fatalf("redemption after a restart: %v, want %s", err, CodeRedeemed)
	}
	old, err := NewVoucher(sponsor, dep.ChainID, e.svc.Address(), money.MYST(1), time.Second, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cl.Redeem(ctx, old.Code(), bob, dep.Hermes, common.Address{}); apiCode(err) != CodeVoucherExpired {
		t.Fatalf("expired voucher: %v, want %s", err, CodeVoucherExpired)
	}
	big1, err := NewVoucher(sponsor, dep.ChainID, e.svc.Address(), money.MYST(50), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cl.Redeem(ctx, big1.Code(), bob, dep.Hermes, common.Address{}); apiCode(err) != CodeSponsorBudget {
		t.Fatalf("voucher above the sponsor's allowance: %v, want %s", err, CodeSponsorBudget)
	}
	v2, _ := NewVoucher(sponsor, dep.ChainID, e.svc.Address(), money.MYST(1), time.Hour, time.Now())
	if _, err := e.cl.Redeem(ctx, v2.Code(), bob, dep.Hermes, common.Address{}); err != nil {
		t.Fatal(err)
	}
	v3, _ := NewVoucher(sponsor, dep.ChainID, e.svc.Address(), money.MYST(1), time.Hour, time.Now())
	if _, err := e.cl.Redeem(ctx, v3.Code(), keytest.Signer(t), dep.Hermes, common.Address{}); apiCode(err) != CodeSponsorCap {
		t.Fatalf("third voucher of a sponsor capped at 2: %v, want %s", err, CodeSponsorCap)
	}
}

// TestAbusiveClientLimited: a source that floods the API gets 429 with
// Retry-After, and calls for one identity are limited whatever their source.
func TestAbusiveClientLimited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lim := DefaultLimits
	lim.PerSource, lim.SourceBurst = 1, 5
	e := newEnv(t, ctx, func(c *Config) { c.Limits = lim })
	var last *http.Response
	limited := 0
	for range 20 {
		resp, err := http.Get(e.srv.URL + PathFees)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
			last = resp
		}
	}
	if limited < 10 || last.Header.Get("Retry-After") == "" {
		t.Fatalf("%d of 20 fast requests limited (Retry-After %q); want most of them", limited, last.Header.Get("Retry-After"))
	}

	// Per identity: a generous source limit, the default identity limit.
	e.startService(t, ctx, func(c *Config) { c.Limits = DefaultLimits })
	q, err := e.cl.Quote(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := keytest.Signer(t)
	codes := []string{}
	for range DefaultLimits.IdentityBurst + 2 {
		// A fee below the quote: refused after the identity limit.
		_, err := e.cl.Register(ctx, q, id, e.dc.Deployment().Hermes, big.NewInt(1), true, common.Address{})
		codes = append(codes, apiCode(err))
	}
	if !slices.Contains(codes, CodeRateLimited) || codes[0] != CodeFeeTooLow {
		t.Fatalf("codes %v: want %s first, then %s", codes, CodeFeeTooLow, CodeRateLimited)
	}
}

// TestOpenAPIMatchesRoutes keeps openapi.json equal to the served routes.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for p, ms := range doc.Paths {
		for m := range ms {
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	s := &Service{lim: newLimiters(DefaultLimits)}
	var served []string
	for _, r := range s.routes() {
		served = append(served, r.pattern)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("openapi.json documents %v, the server serves %v", documented, served)
	}
}
