package pingpong

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/payments"
)

func signer(t testing.TB, seed byte) *identity.KeySigner { return keytest.Seeded(t, seed) }

// events records the order of store writes and sends across fakes.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, fmt.Sprintf(format, args...))
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// fakeHashlocks is an in-memory HashlockStore for unit tests.
type fakeHashlocks struct {
	ev      *events
	mu      sync.Mutex
	secrets map[[32]byte][32]byte
	fail    error
}

func (s *fakeHashlocks) Put(_ context.Context, lock, r [32]byte, agreementID *big.Int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if payments.Hashlock(r[:]) != lock {
		return errors.New("secret does not match hashlock")
	}
	if s.secrets == nil {
		s.secrets = make(map[[32]byte][32]byte)
	}
	s.secrets[lock] = r
	s.ev.add("put %x", lock[:4])
	return nil
}

// fakeExchanges is an in-memory ExchangeStore.
type fakeExchanges struct {
	mu     sync.Mutex
	latest *payments.ExchangeMessage
	count  int
}

func (s *fakeExchanges) PutExchange(ctx context.Context, em *payments.ExchangeMessage) error {
	if err := ctx.Err(); err != nil { // as the bbolt store does
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest = em
	s.count++
	return nil
}

// fakeHermes checks exchange messages like a hermes would (signatures,
// monotonic agreement totals, channel balance) and issues signed promises.
type fakeHermes struct {
	operator *identity.KeySigner
	balance  *big.Int // consumer channel balance

	mu        sync.Mutex
	down      bool
	reject    bool
	totals    map[string]*big.Int // agreement -> total
	consumer  *big.Int            // highest consumer promise amount seen
	provider  *big.Int            // cumulative amount promised to the provider
	issued    map[[32]byte]*payments.Promise
	revealed  map[[32]byte]bool
	requests  int
	lastIssue *payments.Promise
}

func newFakeHermes(t testing.TB, balance int64) *fakeHermes {
	return &fakeHermes{
		operator: signer(t, 0x77), balance: big.NewInt(balance),
		totals: map[string]*big.Int{}, consumer: new(big.Int), provider: new(big.Int),
		issued: map[[32]byte]*payments.Promise{}, revealed: map[[32]byte]bool{},
	}
}

var errHermesDown = errors.New("hermes: connection refused")

func (h *fakeHermes) setDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

func (h *fakeHermes) RequestPromise(_ context.Context, em *payments.ExchangeMessage) (*payments.Promise, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if h.down {
		return nil, errHermesDown
	}
	if h.reject {
		return nil, fmt.Errorf("%w: channel balance exceeded", ErrHermesRejected)
	}
	if p, ok := h.issued[em.Promise.Hashlock]; ok { // idempotent
		return p, nil
	}
	if _, err := em.RecoverConsumer(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHermesRejected, err)
	}
	if em.Promise.Amount.Cmp(h.balance) > 0 {
		return nil, fmt.Errorf("%w: promise above channel balance", ErrHermesRejected)
	}
	key := em.AgreementID.String()
	prev := h.totals[key]
	if prev == nil {
		prev = new(big.Int)
	}
	if em.AgreementTotal.Cmp(prev) <= 0 || em.Promise.Amount.Cmp(h.consumer) <= 0 {
		return nil, fmt.Errorf("%w: amounts must increase", ErrHermesRejected)
	}
	h.provider.Add(h.provider, new(big.Int).Sub(em.AgreementTotal, prev))
	h.totals[key] = new(big.Int).Set(em.AgreementTotal)
	h.consumer.Set(em.Promise.Amount)
	p := &payments.Promise{
		ChainID: em.ChainID, ChannelID: payments.ProviderChannelID(em.Provider, em.HermesID),
		Amount: new(big.Int).Set(h.provider), Fee: new(big.Int), Hashlock: em.Promise.Hashlock,
	}
	if err := p.Sign(h.operator); err != nil {
		return nil, err
	}
	h.issued[em.Promise.Hashlock] = p
	h.lastIssue = p
	return p, nil
}

func (h *fakeHermes) RevealR(_ context.Context, _ common.Address, lock [32]byte, r [32]byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return errHermesDown
	}
	if payments.Hashlock(r[:]) != lock {
		return fmt.Errorf("secret does not match hashlock")
	}
	if _, ok := h.issued[lock]; !ok {
		return fmt.Errorf("reveal of a secret for no issued promise")
	}
	h.revealed[lock] = true
	return nil
}

func (h *fakeHermes) providerTotal() *big.Int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return new(big.Int).Set(h.provider)
}

// fakeChannel is an in-memory Channel.
type fakeChannel struct {
	id      [32]byte
	mu      sync.Mutex
	balance *big.Int
	raised  *big.Int
}

func newFakeChannel(balance int64) *fakeChannel {
	return &fakeChannel{id: payments.ConsumerChannelID(common.HexToAddress("0xc0ffee")), balance: big.NewInt(balance), raised: new(big.Int)}
}

func (c *fakeChannel) ID() [32]byte { return c.id }

func (c *fakeChannel) Raise(_ context.Context, delta *big.Int) (*big.Int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if delta.Sign() <= 0 {
		return nil, fmt.Errorf("raise by %s", delta)
	}
	next := new(big.Int).Add(c.raised, delta)
	if next.Cmp(c.balance) > 0 {
		return nil, fmt.Errorf("%w: %s > %s", ErrInsufficientBalance, next, c.balance)
	}
	c.raised = next
	return new(big.Int).Set(next), nil
}

func (c *fakeChannel) promised() *big.Int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return new(big.Int).Set(c.raised)
}
