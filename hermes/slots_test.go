package hermes

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/hermes/store"
)

// blockingStore holds every state read of one identity until release is
// closed.
type blockingStore struct {
	*failingStore
	slow    common.Address
	entered chan struct{} // closed when the slow identity's read started
	once    sync.Once
	release chan struct{}
}

func (b *blockingStore) hold(id common.Address) {
	if id == b.slow {
		b.once.Do(func() { close(b.entered) })
		<-b.release
	}
}

func (b *blockingStore) Consumer(ctx context.Context, id common.Address) (store.Consumer, []store.Agreement, error) {
	b.hold(id)
	return b.failingStore.Consumer(ctx, id)
}

func (b *blockingStore) Provider(ctx context.Context, id common.Address) (store.Provider, error) {
	b.hold(id)
	return b.failingStore.Provider(ctx, id)
}

// TestStoreReadsDoNotHoldCPUSlot: a request waiting for the store to load
// a consumer's or a provider's state does not hold a CPU slot, so with one
// slot (a 2-core machine) other consumers' requests still get through.
// Before, the state was read under the slot and every other request waited
// for the slow read.
func TestStoreReadsDoNotHoldCPUSlot(t *testing.T) {
	for _, kind := range []string{"consumer", "provider"} {
		t.Run(kind, func(t *testing.T) {
			slowC, fastC := testSigner("slow consumer"), testSigner("fast consumer")
			slowP, fastP := testSigner("slow provider").Address(), testSigner("fast provider").Address()
			bs := &blockingStore{failingStore: newFailingStore(t), entered: make(chan struct{}), release: make(chan struct{})}
			if kind == "consumer" {
				bs.slow = slowC.Address()
			} else {
				bs.slow = slowP
			}
			e := newEnvStore(t, bs, newFakeChain(testHermes), func(c *Config) { c.CPUSlots = 1 })
			e.chain.register(slowC.Address(), 10_000)
			e.chain.register(fastC.Address(), 10_000)
			ctx := context.Background()
			slowDone := make(chan error, 1)
			go func() {
				_, err := e.svc.Exchange(ctx, msg(t, slowC, slowP, 1, 100, 100, secret("slow")))
				slowDone <- err
			}()
			defer func() {
				close(bs.release)
				if err := <-slowDone; err != nil {
					t.Errorf("slow exchange: %v", err)
				}
			}()
			<-bs.entered
			fastDone := make(chan error, 1)
			go func() {
				_, err := e.svc.Exchange(ctx, msg(t, fastC, fastP, 1, 100, 100, secret("fast")))
				fastDone <- err
			}()
			select {
			case err := <-fastDone:
				if err != nil {
					t.Fatalf("fast exchange: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("another consumer's exchange waited for a blocked %s read", kind)
			}
		})
	}
}

// twoCommitters is a store whose commits run on two connections to a
// server (as PostgreSQL's).
type twoCommitters struct{ store.Store }

func (twoCommitters) Committers() int { return 2 }

// TestDefaultCPUSlots: requests get every processor for their CPU-bound
// part when the store commits on a server (a commit here mostly waits),
// all but one when the commit is CPU work in this process (SQLite).
func TestDefaultCPUSlots(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	sq := newFailingStore(t)
	for _, tc := range []struct {
		name string
		st   store.Store
		want int
	}{
		{"sqlite", sq, max(1, procs-1)},
		{"server", twoCommitters{sq}, procs},
	} {
		svc, err := New(Config{ChainID: testChainID, HermesID: testHermes, Operator: testSigner("operator")}, tc.st, newFakeChain(testHermes))
		if err != nil {
			t.Fatal(err)
		}
		if got := svc.Config().CPUSlots; got != tc.want || cap(svc.cpu) != tc.want {
			t.Errorf("%s: %d CPU slots (%d admitted), want %d", tc.name, got, cap(svc.cpu), tc.want)
		}
	}
	t.Cleanup(func() { _ = sq.Close() })
}
