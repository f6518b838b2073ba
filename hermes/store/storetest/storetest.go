// Package storetest is the conformance suite every hermes store
// implementation must pass; the SQLite and PostgreSQL tests both call Run.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/payments"
)

// Opener opens a fresh, empty store for one test. reopen closes nothing:
// the suite closes the first store and then calls reopen to open the same
// database again (restart).
type Opener func(t *testing.T) (s store.Store, reopen func() store.Store)

var (
	hermesID = common.HexToAddress("0x00000000000000000000000000000000000000ee")
	channel  = common.HexToAddress("0x00000000000000000000000000000000000000cc")
)

func signer(t *testing.T, label string) *identity.KeySigner {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("storetest " + label)))
	if err != nil {
		t.Fatal(err)
	}
	return identity.NewKeySigner(k)
}

// accept builds a signed Accept moving consumer to amount and provider to
// earned, expecting the given versions.
func accept(t *testing.T, consumer, operator identity.Signer, provider common.Address, agreement, amount, earned int64, r []byte, cv, pv int64) store.Accept {
	t.Helper()
	m := payments.ExchangeMessage{
		Promise:     payments.Promise{ChainID: big.NewInt(1337), ChannelID: payments.ConsumerChannelID(channel), Amount: big.NewInt(amount), Fee: big.NewInt(0), Hashlock: payments.Hashlock(r)},
		AgreementID: big.NewInt(agreement), AgreementTotal: big.NewInt(amount), Provider: provider, HermesID: hermesID, ChainID: big.NewInt(1337),
	}
	if err := m.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	d, _ := m.Digest()
	hp := payments.Promise{ChainID: big.NewInt(1337), ChannelID: payments.ProviderChannelID(provider, hermesID), Amount: big.NewInt(earned), Fee: big.NewInt(0), Hashlock: m.Promise.Hashlock}
	if err := hp.Sign(operator); err != nil {
		t.Fatal(err)
	}
	return store.Accept{
		Exchange: store.Exchange{Digest: d, Consumer: consumer.Address(), Provider: provider, AgreementID: m.AgreementID, AgreementTotal: m.AgreementTotal,
			ConsumerPromise: m.Promise, HermesPromise: hp, ExchangeSignature: m.Signature},
		Consumer: store.Consumer{Identity: consumer.Address(), Channel: channel, Promised: big.NewInt(amount), Consumed: big.NewInt(amount), Settled: new(big.Int), Version: cv},
		Provider: store.Provider{Identity: provider, Earned: big.NewInt(earned), Version: pv},
	}
}

// Exchanges returns how many exchanges s holds.
func Exchanges(tb testing.TB, s store.Store) int64 {
	tb.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return st.Exchanges
}

// Run runs the conformance suite against stores made by open.
func Run(t *testing.T, open Opener) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open) })
	t.Run("CommitAndRead", func(t *testing.T) { testCommitAndRead(t, open) })
	t.Run("Conflicts", func(t *testing.T) { testConflicts(t, open) })
	t.Run("RevealAndSettle", func(t *testing.T) { testRevealAndSettle(t, open) })
	t.Run("Restart", func(t *testing.T) { testRestart(t, open) })
	t.Run("LatePromise", func(t *testing.T) { testLatePromise(t, open) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, open) })
	t.Run("BatchLoad", func(t *testing.T) { testBatchLoad(t, open) })
}

// testBatchLoad: LoadConsumers and LoadProviders return, for each id in
// order, what Consumer and Provider return for it: known and unknown
// identities, repeats, a settled amount without a journal row, none at
// all, and at most MaxLoadBatch ids.
func testBatchLoad(t *testing.T, open Opener) {
	ctx := context.Background()
	s, _ := open(t)
	defer s.Close()
	bl, ok := s.(store.BatchLoader)
	if !ok {
		t.Fatalf("%T does not implement store.BatchLoader", s)
	}
	if cs, err := bl.LoadConsumers(ctx, nil); err != nil || len(cs) != 0 {
		t.Fatalf("no consumers: %v %v", cs, err)
	}
	if ps, err := bl.LoadProviders(ctx, nil); err != nil || len(ps) != 0 {
		t.Fatalf("no providers: %v %v", ps, err)
	}
	op := signer(t, "op")
	providers := []common.Address{common.HexToAddress("0xb1"), common.HexToAddress("0xb2"), common.HexToAddress("0xb3")}
	pv := map[common.Address]int64{}
	earned := map[common.Address]int64{}
	var consumers []common.Address
	var accepts []store.Accept
	var revealable []store.Accept
	for i := range 20 {
		c := signer(t, fmt.Sprintf("batch %d", i))
		consumers = append(consumers, c.Address())
		// Consumer i has i%3 accepts, over up to two providers.
		for k := range i % 3 {
			p := providers[(i+k)%len(providers)]
			earned[p] += 10
			a := accept(t, c, op, p, int64(k+1), int64(10*(k+1)), earned[p], []byte(fmt.Sprintf("r %d %d", i, k)), int64(k), pv[p])
			a.Consumer.Consumed = big.NewInt(int64(10 * (k + 1)))
			pv[p]++
			accepts = append(accepts, a)
			if k == 0 && i%2 == 0 {
				revealable = append(revealable, a)
			}
		}
	}
	if err := s.Commit(ctx, accepts); err != nil {
		t.Fatal(err)
	}
	for _, a := range revealable {
		r := []byte(fmt.Sprintf("r %d %d", indexOf(consumers, a.Exchange.Consumer), 0))
		if _, err := s.RevealR(ctx, a.Exchange.Provider, a.Exchange.ConsumerPromise.Hashlock, r); err != nil {
			t.Fatal(err)
		}
	}
	// Settled amounts: one consumer with journal rows, one without.
	if err := s.SetSettled(ctx, consumers[2], big.NewInt(7), nil); err != nil {
		t.Fatal(err)
	}
	settledOnly := common.HexToAddress("0x5e77")
	if err := s.SetSettled(ctx, settledOnly, big.NewInt(9), nil); err != nil {
		t.Fatal(err)
	}
	ids := append([]common.Address{common.HexToAddress("0xdead"), settledOnly}, consumers...)
	ids = append(ids, consumers[5], consumers[0]) // repeats
	got, err := bl.LoadConsumers(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) {
		t.Fatalf("%d consumer states for %d ids", len(got), len(ids))
	}
	for i, id := range ids {
		c, ags, err := s.Consumer(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffConsumer(got[i], store.ConsumerState{Consumer: c, Agreements: ags}); d != "" {
			t.Fatalf("consumer %d (%s): batch and single loads differ: %s", i, id.Hex(), d)
		}
	}
	if got[1].Consumer.Settled.Int64() != 9 || got[1].Consumer.Version != 0 || got[4].Consumer.Settled.Int64() != 7 || got[4].Consumer.Version != 2 {
		t.Fatalf("settled amounts not loaded: %+v %+v", got[1].Consumer, got[4].Consumer)
	}
	pids := append([]common.Address{common.HexToAddress("0xbeef")}, providers...)
	pids = append(pids, providers[0])
	gotP, err := bl.LoadProviders(ctx, pids)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotP) != len(pids) {
		t.Fatalf("%d provider states for %d ids", len(gotP), len(pids))
	}
	for i, id := range pids {
		p, err := s.Provider(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		g := gotP[i]
		if g.Identity != id || g.Version != p.Version || g.Unrevealed != p.Unrevealed || g.Earned.Cmp(p.Earned) != 0 {
			t.Fatalf("provider %d (%s): batch %+v, single %+v", i, id.Hex(), g, p)
		}
		if i > 0 && (g.Version != pv[id] || g.Earned.Int64() != earned[id]) {
			t.Fatalf("provider %s: %+v, want version %d earned %d", id.Hex(), g, pv[id], earned[id])
		}
	}
	if gotP[1].Unrevealed == gotP[1].Version && gotP[2].Unrevealed == gotP[2].Version && gotP[3].Unrevealed == gotP[3].Version {
		t.Fatal("reveals not counted by any provider load")
	}
	// The bound: MaxLoadBatch ids are one load, one more is refused.
	many := make([]common.Address, store.MaxLoadBatch)
	for i := range many {
		many[i] = common.BigToAddress(big.NewInt(int64(0x10000 + i)))
	}
	many[len(many)-1] = consumers[4]
	if got, err := bl.LoadConsumers(ctx, many); err != nil || len(got) != len(many) || got[len(many)-1].Consumer.Version != 1 || got[0].Consumer.Version != 0 {
		t.Fatalf("MaxLoadBatch consumers: %v", err)
	}
	if got, err := bl.LoadProviders(ctx, append(many[:len(many)-1:len(many)-1], providers[0])); err != nil || len(got) != len(many) || got[len(many)-1].Version != pv[providers[0]] {
		t.Fatalf("MaxLoadBatch providers: %v", err)
	}
	if _, err := bl.LoadConsumers(ctx, append(many, consumers[0])); err == nil {
		t.Fatal("more than MaxLoadBatch consumers loaded")
	}
	if _, err := bl.LoadProviders(ctx, append(many, providers[0])); err == nil {
		t.Fatal("more than MaxLoadBatch providers loaded")
	}
}

func indexOf(ids []common.Address, id common.Address) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}

// diffConsumer describes how a and b differ ("" when equal; agreements in
// any order).
func diffConsumer(a, b store.ConsumerState) string {
	x, y := a.Consumer, b.Consumer
	if x.Identity != y.Identity || x.Channel != y.Channel || x.Version != y.Version ||
		x.Promised.Cmp(y.Promised) != 0 || x.Consumed.Cmp(y.Consumed) != 0 || x.Settled.Cmp(y.Settled) != 0 {
		return fmt.Sprintf("state %+v vs %+v", x, y)
	}
	if len(a.Agreements) != len(b.Agreements) {
		return fmt.Sprintf("agreements %+v vs %+v", a.Agreements, b.Agreements)
	}
	key := func(g store.Agreement) string { return g.Consumer.Hex() + g.Provider.Hex() + g.AgreementID.String() }
	want := map[string]string{}
	for _, g := range b.Agreements {
		want[key(g)] = g.Total.String()
	}
	for _, g := range a.Agreements {
		if want[key(g)] != g.Total.String() {
			return fmt.Sprintf("agreements %+v vs %+v", a.Agreements, b.Agreements)
		}
	}
	return ""
}

// testLeases: one holder at a time, renewal by the holder, takeover only
// after expiry, release, and leases surviving a restart.
func testLeases(t *testing.T, open Opener) {
	ctx := context.Background()
	s, reopen := open(t)
	now := time.Unix(1_800_000_000, 0)
	ttl := time.Minute
	must := func(want bool, name, holder string, at time.Time) {
		t.Helper()
		got, err := s.AcquireLease(ctx, name, holder, at, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("AcquireLease(%s, %s, +%v) = %v, want %v", name, holder, at.Sub(now), got, want)
		}
	}
	must(true, "settle", "a", now)
	must(false, "settle", "b", now.Add(time.Second))
	must(true, "other", "b", now.Add(time.Second))     // leases are independent
	must(true, "settle", "a", now.Add(50*time.Second)) // renew: now until +110s
	must(false, "settle", "b", now.Add(100*time.Second))
	must(true, "settle", "b", now.Add(110*time.Second)) // a's lease ran out
	must(false, "settle", "a", now.Add(111*time.Second))
	if err := s.ReleaseLease(ctx, "settle", "a"); err != nil { // not a's: no effect
		t.Fatal(err)
	}
	must(false, "settle", "a", now.Add(112*time.Second))
	if err := s.ReleaseLease(ctx, "settle", "b"); err != nil {
		t.Fatal(err)
	}
	must(true, "settle", "a", now.Add(113*time.Second))
	if _, err := s.AcquireLease(ctx, "", "a", now, ttl); err == nil {
		t.Fatal("empty lease name accepted")
	}
	if _, err := s.AcquireLease(ctx, "settle", "a", now, 0); err == nil {
		t.Fatal("zero ttl accepted")
	}
	s.Close()
	s = reopen()
	defer s.Close()
	must(false, "settle", "b", now.Add(114*time.Second)) // durable
}

func testEmpty(t *testing.T, open Opener) {
	ctx := context.Background()
	s, _ := open(t)
	defer s.Close()
	c, ags, err := s.Consumer(ctx, common.HexToAddress("0x1"))
	if err != nil || c.Version != 0 || c.Promised.Sign() != 0 || len(ags) != 0 {
		t.Fatalf("unknown consumer: %+v %v %v", c, ags, err)
	}
	p, err := s.Provider(ctx, common.HexToAddress("0x2"))
	if err != nil || p.Version != 0 || p.Earned.Sign() != 0 {
		t.Fatalf("unknown provider: %+v %v", p, err)
	}
	if _, err := s.ExchangeByDigest(ctx, [32]byte{2}, [32]byte{1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing exchange: %v", err)
	}
	if _, err := s.RevealR(ctx, common.HexToAddress("0x2"), [32]byte{1}, []byte("r")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reveal of unknown hashlock: %v", err)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.SchemaVersion < 1 {
		t.Fatalf("stats %+v %v", st, err)
	}
}

func testCommitAndRead(t *testing.T, open Opener) {
	ctx := context.Background()
	s, _ := open(t)
	defer s.Close()
	c, op := signer(t, "c"), signer(t, "op")
	p1, p2 := common.HexToAddress("0xa1"), common.HexToAddress("0xa2")
	a1 := accept(t, c, op, p1, 1, 100, 100, []byte("r1"), 0, 0)
	a2 := accept(t, c, op, p2, 2, 250, 150, []byte("r2"), 1, 0)
	a3 := accept(t, c, op, p1, 1, 300, 150, []byte("r3"), 2, 1)
	if err := s.Commit(ctx, []store.Accept{a1, a2}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, []store.Accept{a3}); err != nil {
		t.Fatal(err)
	}
	cs, ags, err := s.Consumer(ctx, c.Address())
	if err != nil {
		t.Fatal(err)
	}
	if cs.Promised.Int64() != 300 || cs.Version != 3 || cs.Channel != channel || len(ags) != 2 {
		t.Fatalf("consumer %+v agreements %+v", cs, ags)
	}
	for _, a := range ags {
		want := map[common.Address]int64{p1: 300, p2: 250}[a.Provider]
		if a.Total.Int64() != want {
			t.Fatalf("agreement %+v, want total %d", a, want)
		}
	}
	ps, err := s.Provider(ctx, p1)
	if err != nil || ps.Earned.Int64() != 150 || ps.Version != 2 || ps.Unrevealed != 2 {
		t.Fatalf("provider %+v %v", ps, err)
	}
	e, err := s.ExchangeByDigest(ctx, a2.Exchange.ConsumerPromise.Hashlock, a2.Exchange.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if !e.ConsumerPromise.Equal(&a2.Exchange.ConsumerPromise) || !e.HermesPromise.Equal(&a2.Exchange.HermesPromise) || e.Provider != p2 || e.R != nil {
		t.Fatalf("exchange read back differs: %+v", e)
	}
	if err := e.HermesPromise.Verify(op.Address()); err != nil {
		t.Fatal(err)
	}
	latest, err := s.LatestProviderExchange(ctx, p1)
	if err != nil || latest.Digest != a3.Exchange.Digest {
		t.Fatalf("latest provider exchange %x %v", latest.Digest, err)
	}
	cons, err := s.Consumers(ctx)
	if err != nil || len(cons) != 1 || cons[0].Identity != c.Address() {
		t.Fatalf("consumers %+v %v", cons, err)
	}
	if n := Exchanges(t, s); n != 3 {
		t.Fatalf("exchanges %d, want 3", n)
	}
}

func testConflicts(t *testing.T, open Opener) {
	ctx := context.Background()
	s, _ := open(t)
	defer s.Close()
	c, op := signer(t, "c"), signer(t, "op")
	p := common.HexToAddress("0xa1")
	if err := s.Commit(ctx, []store.Accept{accept(t, c, op, p, 1, 100, 100, []byte("r1"), 0, 0)}); err != nil {
		t.Fatal(err)
	}
	// Stale consumer version (another process wrote first): nothing stored,
	// including the valid accept before it in the same batch.
	other := signer(t, "other")
	good := accept(t, other, op, common.HexToAddress("0xa9"), 1, 10, 10, []byte("x"), 0, 0)
	stale := accept(t, c, op, p, 1, 200, 200, []byte("r2"), 0, 1)
	if err := s.Commit(ctx, []store.Accept{good, stale}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale consumer version: %v", err)
	}
	stalep := accept(t, c, op, p, 1, 200, 200, []byte("r2"), 1, 0)
	if err := s.Commit(ctx, []store.Accept{stalep}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale provider version: %v", err)
	}
	dup := accept(t, c, op, p, 1, 100, 100, []byte("r1"), 1, 1)
	if err := s.Commit(ctx, []store.Accept{dup}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate digest: %v", err)
	}
	// A version ahead of the stored one (its predecessor is missing: a
	// writer that assumed an accept which never committed) is a conflict,
	// for the consumer and for the provider.
	gapc := accept(t, c, op, p, 1, 300, 300, []byte("r3"), 2, 1)
	if err := s.Commit(ctx, []store.Accept{gapc}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("consumer version gap: %v", err)
	}
	gapp := accept(t, c, op, p, 1, 300, 300, []byte("r3"), 1, 2)
	if err := s.Commit(ctx, []store.Accept{gapp}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("provider version gap: %v", err)
	}
	fresh := accept(t, signer(t, "fresh"), op, common.HexToAddress("0xa8"), 1, 10, 10, []byte("r4"), 3, 0)
	if err := s.Commit(ctx, []store.Accept{fresh}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("version 3 of a consumer never seen: %v", err)
	}
	if n := Exchanges(t, s); n != 1 {
		t.Fatalf("exchanges %d after rejected commits, want 1", n)
	}
	cs, _, _ := s.Consumer(ctx, c.Address())
	if cs.Promised.Int64() != 100 || cs.Version != 1 {
		t.Fatalf("consumer changed by rejected commits: %+v", cs)
	}
	if o, _, _ := s.Consumer(ctx, other.Address()); o.Version != 0 {
		t.Fatalf("batch partially committed: %+v", o)
	}
}

func testRevealAndSettle(t *testing.T, open Opener) {
	ctx := context.Background()
	s, _ := open(t)
	defer s.Close()
	c, op := signer(t, "c"), signer(t, "op")
	p := common.HexToAddress("0xa1")
	r1, r2 := crypto.Keccak256([]byte("1")), crypto.Keccak256([]byte("2"))
	a1 := accept(t, c, op, p, 1, 100, 100, r1, 0, 0)
	a2 := accept(t, c, op, p, 1, 200, 200, r2, 1, 1)
	if err := s.Commit(ctx, []store.Accept{a1, a2}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SettleCandidate(ctx, c.Address()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("candidate before reveal: %v", err)
	}
	if _, err := s.RevealR(ctx, common.HexToAddress("0xbad"), payments.Hashlock(r1), r1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reveal for another provider: %v", err)
	}
	if n, err := s.RevealR(ctx, p, payments.Hashlock(r1), r1); err != nil || n != 1 {
		t.Fatalf("reveal: %d %v", n, err)
	}
	if n, err := s.RevealR(ctx, p, payments.Hashlock(r1), r1); err != nil || n != 0 {
		t.Fatalf("retried reveal: %d %v", n, err)
	}
	e, err := s.SettleCandidate(ctx, c.Address())
	if err != nil || e.ConsumerPromise.Amount.Int64() != 100 || string(e.R) != string(r1) {
		t.Fatalf("candidate %+v %v", e, err)
	}
	if _, err := s.RevealR(ctx, p, payments.Hashlock(r2), r2); err != nil {
		t.Fatal(err)
	}
	if e, _ = s.SettleCandidate(ctx, c.Address()); e.ConsumerPromise.Amount.Int64() != 200 {
		t.Fatalf("candidate amount %s, want 200", e.ConsumerPromise.Amount)
	}
	if ps, _ := s.Provider(ctx, p); ps.Unrevealed != 0 {
		t.Fatalf("unrevealed %d", ps.Unrevealed)
	}
	tx := common.HexToHash("0x1234")
	if err := s.SetSettled(ctx, c.Address(), big.NewInt(200), &store.Settlement{Consumer: c.Address(), Amount: big.NewInt(200), TxHash: tx}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSettled(ctx, c.Address(), big.NewInt(50), nil); err != nil {
		t.Fatal(err)
	}
	cs, _, _ := s.Consumer(ctx, c.Address())
	if cs.Settled.Int64() != 200 {
		t.Fatalf("settled %s, want 200 (never lowered)", cs.Settled)
	}
	sts, err := s.Settlements(ctx, c.Address())
	if err != nil || len(sts) != 1 || sts[0].TxHash != tx || sts[0].Amount.Int64() != 200 {
		t.Fatalf("settlements %+v %v", sts, err)
	}
	// A later accept must not reset the settled amount.
	a3 := accept(t, c, op, p, 1, 300, 300, []byte("3"), 2, 2)
	if err := s.Commit(ctx, []store.Accept{a3}); err != nil {
		t.Fatal(err)
	}
	if cs, _, _ = s.Consumer(ctx, c.Address()); cs.Settled.Int64() != 200 || cs.Promised.Int64() != 300 {
		t.Fatalf("after accept: %+v", cs)
	}
}

func testRestart(t *testing.T, open Opener) {
	ctx := context.Background()
	s, reopen := open(t)
	c, op := signer(t, "c"), signer(t, "op")
	p := common.HexToAddress("0xa1")
	big1 := new(big.Int).Lsh(big.NewInt(1), 255)
	a := accept(t, c, op, p, 7, 100, 100, []byte("r"), 0, 0)
	a.Consumer.Promised = big1 // amounts up to 2^256-1 survive storage
	if err := s.Commit(ctx, []store.Accept{a}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	defer s.Close()
	cs, ags, err := s.Consumer(ctx, c.Address())
	if err != nil || cs.Promised.Cmp(big1) != 0 || len(ags) != 1 || ags[0].AgreementID.Int64() != 7 {
		t.Fatalf("after restart: %+v %+v %v", cs, ags, err)
	}
	if _, err := s.ExchangeByDigest(ctx, a.Exchange.ConsumerPromise.Hashlock, a.Exchange.Digest); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats(ctx)
	if st.SchemaVersion != 6 || st.Exchanges != 1 {
		t.Fatalf("stats after restart %+v", st)
	}
}

// testLatePromise: a consumer's sessions deliver promises out of order, so
// a later row can carry a lower promise than the highest accepted. The
// state keeps the highest promise and the consumed sum; the settlement
// candidate is the highest revealed promise, not the latest row.
func testLatePromise(t *testing.T, open Opener) {
	ctx := context.Background()
	s, reopen := open(t)
	c, op := signer(t, "c"), signer(t, "op")
	p1, p2 := common.HexToAddress("0xa1"), common.HexToAddress("0xa2")
	rB, rA := crypto.Keccak256([]byte("B")), crypto.Keccak256([]byte("A"))
	// Session B's promise 150 (its own total 50) first, then session A's
	// promise 100 (total 100): consumed 50, then 150; highest stays 150.
	b := accept(t, c, op, p2, 2, 150, 50, rB, 0, 0)
	b.Exchange.AgreementTotal, b.Consumer.Consumed = big.NewInt(50), big.NewInt(50)
	a := accept(t, c, op, p1, 1, 100, 100, rA, 1, 0)
	a.Consumer.Promised, a.Consumer.Consumed = big.NewInt(150), big.NewInt(150)
	if err := s.Commit(ctx, []store.Accept{b, a}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	defer s.Close()
	cs, ags, err := s.Consumer(ctx, c.Address())
	if err != nil || cs.Promised.Int64() != 150 || cs.Consumed.Int64() != 150 || cs.Version != 2 || len(ags) != 2 {
		t.Fatalf("consumer %+v agreements %+v %v", cs, ags, err)
	}
	cons, err := s.Consumers(ctx)
	if err != nil || len(cons) != 1 || cons[0].Promised.Int64() != 150 || cons[0].Consumed.Int64() != 150 {
		t.Fatalf("consumers %+v %v", cons, err)
	}
	if _, err := s.RevealR(ctx, p1, payments.Hashlock(rA), rA); err != nil {
		t.Fatal(err)
	}
	if e, err := s.SettleCandidate(ctx, c.Address()); err != nil || e.ConsumerPromise.Amount.Int64() != 100 {
		t.Fatalf("candidate with only A revealed: %+v %v", e.ConsumerPromise.Amount, err)
	}
	if _, err := s.RevealR(ctx, p2, payments.Hashlock(rB), rB); err != nil {
		t.Fatal(err)
	}
	if e, err := s.SettleCandidate(ctx, c.Address()); err != nil || e.ConsumerPromise.Amount.Int64() != 150 {
		t.Fatalf("candidate with both revealed: %v %v, want the highest promise 150", e.ConsumerPromise.Amount, err)
	}
}
