package hermes

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/identity"
)

// failingStore is a store whose next commits fail on request, optionally
// after waiting for release, and which counts state loads per identity.
type failingStore struct {
	store.Store
	mu        sync.Mutex
	fail      int           // fail this many more commits
	hold      chan struct{} // when set, a failing commit waits for it to close
	entered   chan struct{} // closed when a held commit has started
	commits   int
	consumers map[common.Address]int
	providers map[common.Address]int
}

func newFailingStore(t *testing.T) *failingStore {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hermes.db"))
	if err != nil {
		t.Fatal(err)
	}
	return &failingStore{Store: st, consumers: map[common.Address]int{}, providers: map[common.Address]int{}}
}

var errInjected = errors.New("injected commit failure")

func (f *failingStore) Commit(ctx context.Context, accepts []store.Accept) error {
	f.mu.Lock()
	f.commits++
	fail := f.fail > 0
	if fail {
		f.fail--
	}
	hold, entered := f.hold, f.entered
	f.mu.Unlock()
	if !fail {
		return f.Store.Commit(ctx, accepts)
	}
	if hold != nil {
		close(entered)
		<-hold
	}
	return errInjected
}

func (f *failingStore) Consumer(ctx context.Context, id common.Address) (store.Consumer, []store.Agreement, error) {
	f.mu.Lock()
	f.consumers[id]++
	f.mu.Unlock()
	return f.Store.Consumer(ctx, id)
}

func (f *failingStore) Provider(ctx context.Context, id common.Address) (store.Provider, error) {
	f.mu.Lock()
	f.providers[id]++
	f.mu.Unlock()
	return f.Store.Provider(ctx, id)
}

// loads returns how often the consumer's and the provider's state was read.
func (f *failingStore) loads(c, p common.Address) (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.consumers[c], f.providers[p]
}

// TestFailedCommitReloadsOnlyItsIdentities: a failed commit drops the
// cached state of the consumer and provider it held, which are read again
// and accept the retry; an unrelated consumer and provider keep theirs.
func TestFailedCommitReloadsOnlyItsIdentities(t *testing.T) {
	fs := newFailingStore(t)
	e := newEnvStore(t, fs, newFakeChain(testHermes), nil)
	ctx := context.Background()
	c1, c2 := testSigner("c1"), testSigner("c2")
	p1, p2 := testSigner("p1").Address(), testSigner("p2").Address()
	e.chain.register(c1.Address(), 10_000)
	e.chain.register(c2.Address(), 10_000)
	exchange := func(c identity.Signer, p common.Address, amount int64, label string) error {
		_, err := e.svc.Exchange(ctx, msg(t, c, p, 1, amount, amount, secret(label)))
		return err
	}
	for _, x := range []struct {
		c identity.Signer
		p common.Address
	}{{c1, p1}, {c2, p2}} {
		if err := exchange(x.c, x.p, 100, x.c.Address().Hex()+"1"); err != nil {
			t.Fatal(err)
		}
	}
	fs.mu.Lock()
	fs.fail = 1
	fs.mu.Unlock()
	if err := exchange(c1, p1, 200, "c1-2"); !errors.Is(err, errInjected) {
		t.Fatalf("exchange during a failing commit: %v, want the injected failure", err)
	}
	if err := exchange(c2, p2, 200, "c2-2"); err != nil {
		t.Fatal(err)
	}
	if c, p := fs.loads(c2.Address(), p2); c != 1 || p != 1 {
		t.Fatalf("consumer c2 and provider p2 (not in the failed commit) were read %d and %d times, want once each", c, p)
	}
	res, err := e.svc.Exchange(ctx, msg(t, c1, p1, 1, 200, 200, secret("c1-2")))
	if err != nil {
		t.Fatalf("retry after the failed commit: %v", err)
	}
	if res.Promise.Amount.Int64() != 200 {
		t.Fatalf("provider p1 promise after the retry %s, want 200", res.Promise.Amount)
	}
	if c, p := fs.loads(c1.Address(), p1); c != 2 || p != 2 {
		t.Fatalf("consumer c1 and provider p1 (in the failed commit) were read %d and %d times, want twice each", c, p)
	}
}

// TestFailedCommitDropsQueuedAcceptsOfItsProvider: an accept of the same
// provider queued behind a failing commit extends a version that is never
// stored; it is answered "retry" without reaching the store, and both
// retries then give the provider one unbroken chain of promises.
func TestFailedCommitDropsQueuedAcceptsOfItsProvider(t *testing.T) {
	fs := newFailingStore(t)
	e := newEnvStore(t, fs, newFakeChain(testHermes), nil)
	ctx := context.Background()
	c1, c2 := testSigner("c1"), testSigner("c2")
	p := testSigner("p").Address()
	e.chain.register(c1.Address(), 10_000)
	e.chain.register(c2.Address(), 10_000)
	m1, m2 := msg(t, c1, p, 1, 100, 100, secret("1")), msg(t, c2, p, 2, 50, 50, secret("2"))
	hold, entered := make(chan struct{}), make(chan struct{})
	fs.mu.Lock()
	fs.fail, fs.hold, fs.entered = 1, hold, entered
	fs.mu.Unlock()
	errs := make(chan error, 2)
	go func() { _, err := e.svc.Exchange(ctx, m1); errs <- err }()
	<-entered
	go func() { _, err := e.svc.Exchange(ctx, m2); errs <- err }()
	q := e.svc.committerFor(p).ops
	for deadline := time.Now().Add(10 * time.Second); len(q) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second accept was never queued")
		}
	}
	close(hold)
	for range 2 {
		if err := <-errs; err == nil {
			t.Fatal("an accept of the failed commit's provider succeeded")
		}
	}
	fs.mu.Lock()
	commits := fs.commits
	fs.mu.Unlock()
	if commits != 1 {
		t.Fatalf("%d commits reached the store, want only the failing one", commits)
	}
	for i, m := range []struct {
		c    identity.Signer
		want int64
	}{{c2, 50}, {c1, 150}} {
		mm := m2
		if m.c == c1 {
			mm = m1
		}
		res, err := e.svc.Exchange(ctx, mm)
		if err != nil {
			t.Fatalf("retry %d: %v", i, err)
		}
		if res.Promise.Amount.Int64() != m.want {
			t.Fatalf("retry %d: provider promise %s, want %d", i, res.Promise.Amount, m.want)
		}
	}
	ps, err := fs.Store.Provider(ctx, p)
	if err != nil || ps.Version != 2 || ps.Earned.Int64() != 150 {
		t.Fatalf("provider after the retries %+v %v, want version 2, earned 150", ps, err)
	}
}
