package hermes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/hermes/store/storetest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/payments"
)

var (
	testChainID = big.NewInt(1337)
	testHermes  = common.HexToAddress("0x4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e")
)

type env struct {
	svc   *Service
	st    store.Store
	chain *fakeChain
	op    identity.Signer
	reg   *prometheus.Registry
	// stop ends the service's Run and waits for it (idempotent).
	stop func()
}

// newEnv runs a Service on a fresh SQLite store and a fake chain; the test's
// cleanup stops it and checks nothing leaked.
func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hermes.db"))
	if err != nil {
		t.Fatal(err)
	}
	return newEnvStore(t, st, newFakeChain(testHermes), mod)
}

func newEnvStore(t *testing.T, st store.Store, chain *fakeChain, mod func(*Config)) *env {
	t.Helper()
	e := &env{st: st, chain: chain, op: testSigner("operator"), reg: prometheus.NewRegistry()}
	cfg := Config{ChainID: testChainID, HermesID: testHermes, Operator: e.op, SettleInterval: time.Hour, Metrics: NewMetrics(e.reg), MaxBatch: 64}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := New(cfg, st, e.chain)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.stop = startRun(svc)
	t.Cleanup(func() {
		e.stop()
		_ = st.Close()
	})
	return e
}

// startRun runs svc.Run until stop, which returns once Run has.
func startRun(svc *Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	return func() { cancel(); <-done }
}

func secret(label string) []byte { return crypto.Keccak256([]byte("secret " + label)) }

// msg builds a consumer-signed exchange message on the consumer's channel.
func msg(t testing.TB, consumer identity.Signer, provider common.Address, agreement, total, amount int64, r []byte) *payments.ExchangeMessage {
	t.Helper()
	m := &payments.ExchangeMessage{
		Promise: payments.Promise{ChainID: testChainID, ChannelID: payments.ConsumerChannelID(fakeChannelAddress(consumer.Address(), testHermes)),
			Amount: big.NewInt(amount), Fee: big.NewInt(0), Hashlock: payments.Hashlock(r)},
		AgreementID: big.NewInt(agreement), AgreementTotal: big.NewInt(total), Provider: provider, HermesID: testHermes, ChainID: testChainID,
	}
	if err := m.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMain(m *testing.M) {
	if runChildIfAsked() || runFloodChildIfAsked() || runFloorChildIfAsked() {
		return
	}
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

func TestExchangeAcceptsAndIssuesCumulativeProviderPromises(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	c1, c2 := testSigner("c1"), testSigner("c2")
	e.chain.register(c1.Address(), 10_000)
	e.chain.register(c2.Address(), 10_000)
	prov := testSigner("p1").Address()

	steps := []struct {
		consumer          identity.Signer
		agreement         int64
		total, amount     int64
		wantEarned        int64
		wantConsumerTotal int64
	}{
		{c1, 1, 100, 100, 100, 100},
		{c1, 1, 250, 250, 250, 250},
		{c2, 7, 40, 40, 290, 40},
		{c1, 2, 10, 260, 300, 260}, // second agreement of c1 with the same provider
	}
	for i, s := range steps {
		r := secret(fmt.Sprint(i))
		m := msg(t, s.consumer, prov, s.agreement, s.total, s.amount, r)
		res, err := e.svc.Exchange(ctx, m)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		hp := res.Promise
		if res.Replayed || hp.Amount.Int64() != s.wantEarned || hp.Hashlock != m.Promise.Hashlock ||
			hp.ChannelID != payments.ProviderChannelID(prov, testHermes) || hp.ChainID.Cmp(testChainID) != 0 {
			t.Fatalf("step %d: hermes promise %+v", i, hp)
		}
		if err := hp.Verify(e.op.Address()); err != nil {
			t.Fatalf("step %d: hermes promise signature: %v", i, err)
		}
		v, err := e.svc.Consumer(ctx, s.consumer.Address())
		if err != nil || v.Promised.Int64() != s.wantConsumerTotal {
			t.Fatalf("step %d: consumer view %+v %v", i, v, err)
		}
	}
	pv, err := e.svc.Provider(ctx, prov)
	if err != nil || pv.Earned.Int64() != 300 || pv.Latest == nil || pv.Latest.Amount.Int64() != 300 || pv.Unrevealed != 4 {
		t.Fatalf("provider view %+v %v", pv, err)
	}
	if got := counterValue(e.svc.m.Accepted); got != 4 {
		t.Fatalf("accepted metric %v", got)
	}
}

func TestExchangeIsIdempotent(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	c, prov := parties(e.chain)
	m1 := msg(t, c, prov, 1, 100, 100, secret("1"))
	m2 := msg(t, c, prov, 1, 200, 200, secret("2"))
	r1, err := e.svc.Exchange(ctx, m1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Exchange(ctx, m2); err != nil {
		t.Fatal(err)
	}
	// The same (older) message again: the same promise, nothing stored.
	for i := 0; i < 2; i++ {
		again, err := e.svc.Exchange(ctx, m1)
		if err != nil || !again.Replayed || !again.Promise.Equal(&r1.Promise) {
			t.Fatalf("replay %d: %+v %v", i, again, err)
		}
	}
	if n := storetest.Exchanges(t, e.st); n != 2 {
		t.Fatalf("exchanges %d, want 2", n)
	}
	if got := counterValue(e.svc.m.Replayed); got != 2 {
		t.Fatalf("replayed metric %v", got)
	}
}

func TestExchangeRejections(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MinConsumerFee = big.NewInt(1) })
	ctx := context.Background()
	c := testSigner("c")
	e.chain.register(c.Address(), 1000)
	unregistered := testSigner("stranger")
	prov := testSigner("p").Address()
	other := testSigner("other")

	base := func(amount, total int64) *payments.ExchangeMessage {
		m := msg(t, c, prov, 1, total, amount, secret(fmt.Sprint(amount, total)))
		m.Promise.Fee = big.NewInt(1)
		if err := m.Sign(c); err != nil {
			t.Fatal(err)
		}
		return m
	}
	resign := func(m *payments.ExchangeMessage, s identity.Signer) *payments.ExchangeMessage {
		if err := m.Sign(s); err != nil {
			t.Fatal(err)
		}
		return m
	}
	first := base(500, 500)
	if _, err := e.svc.Exchange(ctx, first); err != nil {
		t.Fatal(err)
	}
	stored := storetest.Exchanges(t, e.st)

	cases := []struct {
		name string
		m    func() *payments.ExchangeMessage
		code Code
	}{
		{"forged consumer signature", func() *payments.ExchangeMessage {
			m := base(600, 600)
			m.Signature[10] ^= 0xff
			return m
		}, CodeBadSignature},
		{"tampered amount after signing", func() *payments.ExchangeMessage {
			m := base(600, 600)
			m.Promise.Amount = big.NewInt(700)
			return m
		}, CodeBadSignature},
		{"promise signed by another key", func() *payments.ExchangeMessage {
			m := base(600, 600)
			if err := m.Promise.Sign(other); err != nil {
				t.Fatal(err)
			}
			d, _ := m.Digest()
			m.Signature, _ = c.Sign(d[:])
			return m
		}, CodeBadSignature},
		{"wrong chain", func() *payments.ExchangeMessage {
			m := base(600, 600)
			m.ChainID, m.Promise.ChainID = big.NewInt(1), big.NewInt(1)
			return resign(m, c)
		}, CodeWrongChain},
		{"wrong hermes", func() *payments.ExchangeMessage {
			m := base(600, 600)
			m.HermesID = common.HexToAddress("0x1")
			return resign(m, c)
		}, CodeWrongHermes},
		{"unregistered consumer", func() *payments.ExchangeMessage {
			m := msg(t, unregistered, prov, 1, 10, 10, secret("u"))
			m.Promise.Fee = big.NewInt(1)
			return resign(m, unregistered)
		}, CodeNotRegistered},
		{"channel not derived from consumer", func() *payments.ExchangeMessage {
			m := base(600, 600)
			m.Promise.ChannelID = payments.ConsumerChannelID(common.HexToAddress("0xdead"))
			return resign(m, c)
		}, CodeWrongChannel},
		{"fee above amount", func() *payments.ExchangeMessage {
			m := base(600, 600)
			m.Promise.Fee = big.NewInt(601)
			return resign(m, c)
		}, CodeBadFee},
		{"fee below minimum", func() *payments.ExchangeMessage {
			m := base(600, 600)
			m.Promise.Fee = big.NewInt(0)
			return resign(m, c)
		}, CodeBadFee},
		{"decreasing promise amount", func() *payments.ExchangeMessage { return base(400, 500) }, CodeAmountDecreased},
		{"decreasing agreement total", func() *payments.ExchangeMessage { return base(600, 400) }, CodeAmountDecreased},
		{"same amount, different content (replay conflict)", func() *payments.ExchangeMessage { return base(500, 501) }, CodeReplayConflict},
		{"promise grows less than the agreement", func() *payments.ExchangeMessage { return base(550, 600) }, CodeUnderpaid},
		{"above channel balance", func() *payments.ExchangeMessage { return base(1001, 1001) }, CodeInsufficientBalance},
	}
	for _, tc := range cases {
		before := counterValue(e.svc.m.Rejected.WithLabelValues(string(tc.code)))
		_, err := e.svc.Exchange(ctx, tc.m())
		var he *Error
		if !errors.As(err, &he) || he.Code != tc.code {
			t.Errorf("%s: got %v, want code %s", tc.name, err, tc.code)
			continue
		}
		if n := storetest.Exchanges(t, e.st); n != stored {
			t.Errorf("%s: stored %d exchanges, want %d", tc.name, n, stored)
		}
		if after := counterValue(e.svc.m.Rejected.WithLabelValues(string(tc.code))); after != before+1 {
			t.Errorf("%s: rejection metric %v -> %v", tc.name, before, after)
		}
	}
	v, err := e.svc.Consumer(ctx, c.Address())
	if err != nil || v.Promised.Int64() != 500 {
		t.Fatalf("consumer state changed by rejections: %+v %v", v, err)
	}
}

func TestBalanceReReadAndTopUpEvent(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	c := testSigner("c")
	e.chain.register(c.Address(), 100)
	prov := testSigner("p").Address()
	if _, err := e.svc.Exchange(ctx, msg(t, c, prov, 1, 100, 100, secret("1"))); err != nil {
		t.Fatal(err)
	}
	// A top-up the hermes has not heard of: the cached balance says no, a
	// fresh read before rejecting says yes.
	e.chain.topUp(c.Address(), 100)
	if _, err := e.svc.Exchange(ctx, msg(t, c, prov, 1, 200, 200, secret("2"))); err != nil {
		t.Fatalf("after silent top-up: %v", err)
	}
	if _, err := e.svc.Exchange(ctx, msg(t, c, prov, 1, 201, 201, secret("3"))); CodeOf(err) != CodeInsufficientBalance {
		t.Fatalf("beyond balance: %v", err)
	}
	// A top-up event invalidates the cache, so the next read is fresh.
	e.chain.topUp(c.Address(), 50)
	e.chain.emit(ChannelEvent{Kind: EventTopUp, Consumer: c.Address()})
	e.chain.mu.Lock()
	reads := e.chain.reads
	e.chain.mu.Unlock()
	if _, err := e.svc.Exchange(ctx, msg(t, c, prov, 1, 250, 250, secret("4"))); err != nil {
		t.Fatal(err)
	}
	e.chain.mu.Lock()
	defer e.chain.mu.Unlock()
	if e.chain.reads != reads+1 {
		t.Fatalf("chain reads %d -> %d, want one fresh read after the event", reads, e.chain.reads)
	}
}

// oneAndTwoServices runs f in two subtests on a fresh env (with mod):
// "one_service", where both services are e.svc, and
// "two_services_one_store_in_process", where the second is another
// Service with its own caches over the same store, so that only the
// store's versioned rows keep them honest.
func oneAndTwoServices(t *testing.T, mod func(*Config), f func(t *testing.T, e *env, services []*Service)) {
	for _, shared := range []bool{false, true} {
		name := "one_service"
		if shared {
			name = "two_services_one_store_in_process"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, mod)
			services := []*Service{e.svc, e.svc}
			if shared {
				services[1] = newEnvStore(t, e.st, e.chain, mod).svc
			}
			f(t, e, services)
		})
	}
}

// TestDoubleSpendRace: one consumer with balance 1000 signs two full chains
// of promises (100..1000), one per provider, as if each provider were the
// only one, and both providers post concurrently. The hermes must never
// promise providers more than the channel holds. Also with two Services
// sharing one store object in this process (not two OS processes: that
// race over one PostgreSQL is tested with real `myst hermes` processes).
func TestDoubleSpendRace(t *testing.T) {
	oneAndTwoServices(t, nil, func(t *testing.T, e *env, services []*Service) {
		const balance = 1000
		c := testSigner("c")
		e.chain.register(c.Address(), balance)
		provs := []common.Address{testSigner("p1").Address(), testSigner("p2").Address()}
		var msgs [2][]*payments.ExchangeMessage
		for p := range provs {
			for i := int64(1); i <= 10; i++ {
				msgs[p] = append(msgs[p], msg(t, c, provs[p], 1, 100*i, 100*i, secret(fmt.Sprint(p, i))))
			}
		}
		var wg sync.WaitGroup
		earned := make([]int64, 2)
		for p := range provs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, m := range msgs[p] {
					res, err := services[p].Exchange(context.Background(), m)
					if err == nil {
						earned[p] = res.Promise.Amount.Int64()
					}
				}
			}()
		}
		wg.Wait()
		total := earned[0] + earned[1]
		if total > balance {
			t.Fatalf("providers were promised %d + %d = %d, channel balance %d", earned[0], earned[1], total, balance)
		}
		if total == 0 {
			t.Fatal("nothing accepted at all")
		}
		cs, _, err := e.st.Consumer(context.Background(), c.Address())
		if err != nil || cs.Promised.Int64() > balance {
			t.Fatalf("consumer promised %v (%v)", cs.Promised, err)
		}
		var stored int64
		for _, p := range provs {
			ps, err := e.st.Provider(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			stored += ps.Earned.Int64()
		}
		if stored != total || stored > cs.Promised.Int64() {
			t.Fatalf("stored provider earnings %d, acknowledged %d, consumer promised %s", stored, total, cs.Promised)
		}
	})
}

func TestRevealAndSettlement(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SettleThreshold = big.NewInt(150) })
	ctx := context.Background()
	c, prov := parties(e.chain)
	r1, r2 := secret("1"), secret("2")
	if _, err := e.svc.Exchange(ctx, msg(t, c, prov, 1, 100, 100, r1)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Reveal(ctx, prov, payments.Hashlock(r1), secret("wrong")); CodeOf(err) != CodeBadPreimage {
		t.Fatalf("wrong preimage: %v", err)
	}
	if _, err := e.svc.Reveal(ctx, prov, payments.Hashlock(secret("x")), secret("x")); CodeOf(err) != CodeNotFound {
		t.Fatalf("unknown hashlock: %v", err)
	}
	if n, err := e.svc.Reveal(ctx, prov, payments.Hashlock(r1), r1); err != nil || n != 1 {
		t.Fatalf("reveal: %d %v", n, err)
	}
	if n, err := e.svc.Reveal(ctx, prov, payments.Hashlock(r1), r1); err != nil || n != 0 {
		t.Fatalf("retried reveal: %d %v", n, err)
	}
	// 100 revealed < threshold 150: nothing is settled.
	if n, err := e.svc.SettleOnce(ctx); err != nil || n != 0 {
		t.Fatalf("settle below threshold: %d %v", n, err)
	}
	if _, err := e.svc.Exchange(ctx, msg(t, c, prov, 1, 300, 300, r2)); err != nil {
		t.Fatal(err)
	}
	// 300 promised but only 100 revealed: still below threshold.
	if n, _ := e.svc.SettleOnce(ctx); n != 0 {
		t.Fatalf("settled without a revealed R above threshold")
	}
	if _, err := e.svc.Reveal(ctx, prov, payments.Hashlock(r2), r2); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.SettleOnce(ctx); err != nil || n != 1 {
		t.Fatalf("settle: %d %v", n, err)
	}
	if len(e.chain.settles) != 1 || e.chain.settles[0].promise.Amount.Int64() != 300 || !bytes.Equal(e.chain.settles[0].r, r2) {
		t.Fatalf("chain settlements %+v, want one of the 300 promise with R2", e.chain.settles)
	}
	// The chain's channel moved exactly the settled amount.
	onChain := func() (balance, settled int64) {
		info, err := e.chain.ConsumerChannel(ctx, c.Address())
		if err != nil {
			t.Fatal(err)
		}
		return info.Balance.Int64(), info.Settled.Int64()
	}
	if bal, set := onChain(); bal != 700 || set != 300 {
		t.Fatalf("channel on chain: balance %d settled %d, want 700 and 300", bal, set)
	}
	v, err := e.svc.Consumer(ctx, c.Address())
	if err != nil || v.Settled.Int64() != 300 || v.Outstanding.Sign() != 0 || v.Balance.Int64() != 700 {
		t.Fatalf("consumer after settlement %+v %v", v, err)
	}
	if n, _ := e.svc.SettleOnce(ctx); n != 0 {
		t.Fatal("settled twice")
	}
	sts, _ := e.st.Settlements(ctx, c.Address())
	if len(sts) != 1 {
		t.Fatalf("settlements recorded %d", len(sts))
	}
	if got := counterValue(e.svc.m.Settlements.WithLabelValues("ok")); got != 1 {
		t.Fatalf("settlement metric %v", got)
	}
	if cs, _, err := e.st.Consumer(ctx, c.Address()); err != nil || cs.Settled.Int64() != 300 {
		t.Fatalf("stored settled %v %v, want 300", cs.Settled, err)
	}
	// More promises; this time someone else settles the revealed one on
	// chain (anyone holding R may). The hermes learns it from the
	// settlement event alone: its stored settled amount moves to the
	// chain's, nothing is outstanding and it does not settle again.
	r3 := secret("3")
	m3 := msg(t, c, prov, 1, 450, 450, r3)
	if _, err := e.svc.Exchange(ctx, m3); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Reveal(ctx, prov, payments.Hashlock(r3), r3); err != nil {
		t.Fatal(err)
	}
	if _, err := e.chain.SettleConsumerPromise(ctx, c.Address(), m3.Promise, r3); err != nil {
		t.Fatal(err)
	}
	e.chain.emit(ChannelEvent{Kind: EventSettled, Consumer: c.Address(), Settled: big.NewInt(450)})
	if cs, _, err := e.st.Consumer(ctx, c.Address()); err != nil || cs.Settled.Int64() != 450 {
		t.Fatalf("stored settled after the settlement event %v %v, want 450", cs.Settled, err)
	}
	if v, err := e.svc.Consumer(ctx, c.Address()); err != nil || v.Settled.Int64() != 450 || v.Outstanding.Sign() != 0 || v.Balance.Int64() != 550 {
		t.Fatalf("consumer after the external settlement %+v %v, want settled 450, balance 550, nothing outstanding", v, err)
	}
	if n, err := e.svc.SettleOnce(ctx); err != nil || n != 0 {
		t.Fatalf("settle after the external settlement: %d %v, want nothing to do", n, err)
	}
	if bal, set := onChain(); bal != 550 || set != 450 || len(e.chain.settles) != 2 {
		t.Fatalf("channel on chain: balance %d settled %d after %d settlements, want 550, 450 and 2", bal, set, len(e.chain.settles))
	}
}

func TestUnrevealedLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxUnrevealed = 2 })
	ctx := context.Background()
	c, prov := parties(e.chain)
	for i := int64(1); i <= 2; i++ {
		if _, err := e.svc.Exchange(ctx, msg(t, c, prov, 1, 10*i, 10*i, secret(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.Exchange(ctx, msg(t, c, prov, 1, 30, 30, secret("3"))); CodeOf(err) != CodeUnrevealedLimit {
		t.Fatalf("third unrevealed: %v", err)
	}
	if _, err := e.svc.Reveal(ctx, prov, payments.Hashlock(secret("1")), secret("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Exchange(ctx, msg(t, c, prov, 1, 30, 30, secret("3"))); err != nil {
		t.Fatalf("after reveal: %v", err)
	}
}

// counterValue reads a counter's current value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// TestConcurrentSessionsOutOfOrder: a consumer pays two sessions at once.
// Its promises are cumulative over the channel, so session B's promise
// (150, counting A's 100) can reach the hermes before session A's (100).
// Both were paid for and both must be accepted; a message that claims more
// than the consumer signed for is still refused, also after a restart
// (consumed is durable).
func TestConcurrentSessionsOutOfOrder(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "hermes.db"))
	if err != nil {
		t.Fatal(err)
	}
	chain := newFakeChain(testHermes)
	e := newEnvStore(t, st, chain, nil)
	c := testSigner("c")
	chain.register(c.Address(), 1000)
	pA, pB := testSigner("pA").Address(), testSigner("pB").Address()

	a1 := msg(t, c, pA, 1, 100, 100, secret("a1")) // session A: 100
	b1 := msg(t, c, pB, 2, 50, 150, secret("b1"))  // session B: 50 more
	a2 := msg(t, c, pA, 1, 120, 170, secret("a2")) // session A: 20 more
	for _, m := range []*payments.ExchangeMessage{b1, a1, a2} {
		if _, err := e.svc.Exchange(ctx, m); err != nil {
			t.Fatalf("agreement %s total %s promise %s: %v", m.AgreementID, m.AgreementTotal, m.Promise.Amount, err)
		}
	}
	res, err := e.svc.Exchange(ctx, a1)
	if err != nil || !res.Replayed || res.Promise.Amount.Int64() != 100 {
		t.Fatalf("replay of the late promise: %+v %v", res, err)
	}
	for p, want := range map[common.Address]int64{pA: 120, pB: 50} {
		v, err := e.svc.Provider(ctx, p)
		if err != nil || v.Earned.Int64() != want {
			t.Fatalf("provider earned %v %v, want %d", v.Earned, err, want)
		}
	}
	cs, _, err := st.Consumer(ctx, c.Address())
	if err != nil || cs.Promised.Int64() != 170 || cs.Consumed.Int64() != 170 {
		t.Fatalf("consumer state %+v %v, want promised 170 consumed 170", cs, err)
	}
	// Everything signed (170) is promised to providers: a new session whose
	// promise is below the highest has nothing left to draw on.
	over := msg(t, c, pB, 3, 10, 160, secret("over"))
	if _, err := e.svc.Exchange(ctx, over); CodeOf(err) != CodeUnderpaid {
		t.Fatalf("claim beyond the signed promises: %v, want %s", err, CodeUnderpaid)
	}
	// A second Service over the same store object (fresh caches, same
	// process) reads consumed back.
	e2 := newEnvStore(t, st, chain, nil)
	if _, err := e2.svc.Exchange(ctx, over); CodeOf(err) != CodeUnderpaid {
		t.Fatalf("after reload: %v, want %s", err, CodeUnderpaid)
	}
	if _, err := e2.svc.Exchange(ctx, msg(t, c, pB, 3, 10, 180, secret("ok"))); err != nil {
		t.Fatalf("paid new session after reload: %v", err)
	}
	if cs, _, _ = st.Consumer(ctx, c.Address()); cs.Promised.Int64() != 180 || cs.Consumed.Int64() != 180 {
		t.Fatalf("consumer state %+v, want promised 180 consumed 180", cs)
	}
}

// TestConcurrentSessionsRace: an honest consumer pays two sessions with one
// cumulative chain of promises (50, 100, ..., 1000, alternating between the
// two providers' agreements), and the two providers post their streams
// concurrently, so the hermes sees the chain in any interleaving. Every
// message must be accepted (retrying only "unavailable"), the providers
// together must earn exactly what the consumer signed, and nothing beyond
// the channel balance. Also with two Services (each with its own caches)
// sharing one store object in this one process: that checks the services'
// cache invalidation and conflict retries, not separate processes, whose
// race over one PostgreSQL is tested with real `myst hermes` OS processes
// elsewhere (issue 10 §5).
func TestConcurrentSessionsRace(t *testing.T) {
	// The providers retry "unavailable" at once, many times: no identity
	// rate limit here (TestIdentityRateLimit tests it).
	unlimited := func(c *Config) { c.Limits.IdentityRate = -1 }
	oneAndTwoServices(t, unlimited, func(t *testing.T, e *env, services []*Service) {
		const balance, step, n = 1000, 50, 20
		c := testSigner("c")
		e.chain.register(c.Address(), balance)
		provs := []common.Address{testSigner("p1").Address(), testSigner("p2").Address()}
		var msgs [2][]*payments.ExchangeMessage
		totals := [2]int64{}
		for i := int64(1); i <= n; i++ {
			p := i % 2
			totals[p] += step
			msgs[p] = append(msgs[p], msg(t, c, provs[p], 10+p, totals[p], step*i, secret(fmt.Sprint("chain", i))))
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for p := range provs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, m := range msgs[p] {
					for try := 0; ; try++ {
						_, err := services[p].Exchange(context.Background(), m)
						if CodeOf(err) == CodeUnavailable && try < 100 {
							continue // a conflict between the two services: retry
						}
						if err != nil {
							errs <- fmt.Errorf("provider %d total %s promise %s: %w", p, m.AgreementTotal, m.Promise.Amount, err)
						}
						break
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var earned int64
		for p, id := range provs {
			ps, err := e.st.Provider(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if ps.Earned.Int64() != totals[p] {
				t.Errorf("provider %d earned %s, its agreement total is %d", p, ps.Earned, totals[p])
			}
			earned += ps.Earned.Int64()
		}
		cs, _, err := e.st.Consumer(context.Background(), c.Address())
		if err != nil {
			t.Fatal(err)
		}
		if cs.Promised.Int64() != balance || cs.Consumed.Int64() != earned || earned != balance {
			t.Fatalf("consumer promised %s consumed %s, providers earned %d, balance %d", cs.Promised, cs.Consumed, earned, balance)
		}
	})
}

// TestUnrevealedLimitSeesOtherProcessReveals: a provider at the
// unrevealed limit of one hermes that reveals its R through another hermes
// on the same store gets new promises from the first again.
func TestUnrevealedLimitSeesOtherProcessReveals(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxUnrevealed = 2 })
	other := newEnvStore(t, e.st, e.chain, nil)
	ctx := context.Background()
	c, prov := parties(e.chain)
	for i := int64(1); i <= 2; i++ {
		if _, err := e.svc.Exchange(ctx, msg(t, c, prov, 1, 10*i, 10*i, secret(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 2; i++ {
		if n, err := other.svc.Reveal(ctx, prov, payments.Hashlock(secret(fmt.Sprint(i))), secret(fmt.Sprint(i))); n != 1 || err != nil {
			t.Fatalf("reveal %d through the other hermes: %d %v", i, n, err)
		}
	}
	if _, err := e.svc.Exchange(ctx, msg(t, c, prov, 1, 30, 30, secret("3"))); err != nil {
		t.Fatalf("after reveals through the other hermes: %v", err)
	}
}

// TestRemovedSettlementEventIsNotApplied: a settlement event that a chain
// reorg dropped (Removed) does not raise the consumer's settled amount;
// the same event on the canonical chain does.
func TestRemovedSettlementEventIsNotApplied(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	c := testSigner("c")
	e.chain.register(c.Address(), 1000)
	if _, err := e.svc.Exchange(ctx, msg(t, c, testSigner("p").Address(), 1, 100, 100, secret("1"))); err != nil {
		t.Fatal(err)
	}
	settled := func() int64 {
		t.Helper()
		st, _, err := e.st.Consumer(ctx, c.Address())
		if err != nil {
			t.Fatal(err)
		}
		return st.Settled.Int64()
	}
	e.chain.emit(ChannelEvent{Kind: EventSettled, Consumer: c.Address(), Settled: big.NewInt(100), Removed: true})
	if got := settled(); got != 0 {
		t.Fatalf("settled %d after a removed event, want 0", got)
	}
	e.chain.emit(ChannelEvent{Kind: EventSettled, Consumer: c.Address(), Settled: big.NewInt(100)})
	if got := settled(); got != 100 {
		t.Fatalf("settled %d after the event, want 100", got)
	}
}
