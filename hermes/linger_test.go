package hermes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/identity"
)

// heldProviderStore holds the state read of one provider until release is
// closed, then answers it with err (nil: the stored state), and records
// the size of every group commit.
type heldProviderStore struct {
	store.Store
	slow    common.Address
	entered chan struct{} // closed when the slow provider's read started
	release chan struct{}
	err     error

	mu      sync.Mutex
	batches []int
}

func newHeldProviderStore(t *testing.T, slow common.Address, err error) *heldProviderStore {
	return &heldProviderStore{Store: newFailingStore(t), slow: slow, entered: make(chan struct{}), release: make(chan struct{}), err: err}
}

func (h *heldProviderStore) Provider(ctx context.Context, id common.Address) (store.Provider, error) {
	if id == h.slow {
		close(h.entered)
		<-h.release
		if h.err != nil {
			return store.Provider{}, h.err
		}
	}
	return h.Store.Provider(ctx, id)
}

func (h *heldProviderStore) Commit(ctx context.Context, accepts []store.Accept) error {
	h.mu.Lock()
	h.batches = append(h.batches, len(accepts))
	h.mu.Unlock()
	return h.Store.Commit(ctx, accepts)
}

func (h *heldProviderStore) sizes() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.batches)
}

// waitComing waits until n requests are counted as coming to provider's
// committer.
func waitComing(t *testing.T, svc *Service, provider common.Address, n int64) {
	t.Helper()
	c := svc.committerFor(provider)
	for deadline := time.Now().Add(10 * time.Second); c.coming.Load() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests coming to the committer, want %d", c.coming.Load(), n)
		}
	}
}

// TestCommitWaitsForAcceptsOnTheirWay: an accept queued while another
// request is past its checks and about to queue its own goes into the same
// group commit (one commit of 2), not a commit of its own each. Here the
// second request waits for the provider lock the first holds while its
// provider state loads, so without the wait the committer takes the first
// accept alone the moment it is queued (commits of 1 and 1).
func TestCommitWaitsForAcceptsOnTheirWay(t *testing.T) {
	c1, c2 := testSigner("linger c1"), testSigner("linger c2")
	p := testSigner("linger provider").Address()
	hs := newHeldProviderStore(t, p, nil)
	e := newEnvStore(t, hs, newFakeChain(testHermes), func(c *Config) { c.CommitDelay = 10 * time.Second; c.CPUSlots = 1 })
	e.chain.register(c1.Address(), 10_000)
	e.chain.register(c2.Address(), 10_000)
	ctx := context.Background()
	errs := make(chan error, 2)
	go func() { _, err := e.svc.Exchange(ctx, msg(t, c1, p, 1, 100, 100, secret("l1"))); errs <- err }()
	<-hs.entered // the first request holds the provider's lock, loading it
	go func() { _, err := e.svc.Exchange(ctx, msg(t, c2, p, 2, 50, 50, secret("l2"))); errs <- err }()
	waitComing(t, e.svc, p, 2)
	start := time.Now()
	close(hs.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the accepts took %v: the committer waited for its delay, not for the accept on its way", took)
	}
	if got := hs.sizes(); !slices.Equal(got, []int{2}) {
		t.Errorf("group commits of %v accepts, want one of 2", got)
	}
}

// TestCommitWaitIsBounded: a request counted as coming that does not
// arrive holds the batch back at most CommitDelay, and one that gives up
// ends the wait at once.
func TestCommitWaitIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
		fail  bool // the held request fails (and stops being counted) while the commit waits
	}{
		{"delay passes", 200 * time.Millisecond, false},
		{"coming request fails", time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c1, c2 := testSigner("bound c1"), testSigner("bound c2")
			p1, p2 := testSigner("bound p1").Address(), testSigner("bound p2").Address()
			hs := newHeldProviderStore(t, p2, errors.New("injected read failure"))
			e := newEnvStore(t, hs, newFakeChain(testHermes), func(c *Config) { c.CommitDelay = tc.delay; c.Committers = 1 })
			e.chain.register(c1.Address(), 10_000)
			e.chain.register(c2.Address(), 10_000)
			ctx := context.Background()
			held := make(chan error, 1)
			go func() { _, err := e.svc.Exchange(ctx, msg(t, c2, p2, 1, 100, 100, secret("b2"))); held <- err }()
			<-hs.entered // counted as coming, stuck in its provider's read
			defer func() {
				if !tc.fail {
					close(hs.release)
					if err := <-held; err == nil {
						t.Error("the held request succeeded after its provider read failed")
					}
				}
			}()
			done := make(chan error, 1)
			start := time.Now()
			go func() { _, err := e.svc.Exchange(ctx, msg(t, c1, p1, 1, 100, 100, secret("b1"))); done <- err }()
			if tc.fail {
				// The first accept is queued within this (about a
				// millisecond of work); then the other stops coming.
				time.Sleep(100 * time.Millisecond)
				close(hs.release)
				if err := <-held; err == nil {
					t.Fatal("the held request succeeded after its provider read failed")
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the accept waited for a request that never queued")
			}
			if took := time.Since(start); !tc.fail && took < tc.delay {
				t.Errorf("the accept returned after %v, before the delay %v: it did not wait for the request coming", took, tc.delay)
			}
		})
	}
}

// TestCommitWaitsForAStream: after a commit of several accepts, the next
// commit waits (up to CommitDelay) for more of the stream: two accepts
// sent 50 ms apart go in one commit. Before, each was committed as soon
// as it was queued (commits of 2, 1 and 1).
func TestCommitWaitsForAStream(t *testing.T) {
	cs := []identity.Signer{testSigner("stream c1"), testSigner("stream c2"), testSigner("stream c3"), testSigner("stream c4")}
	p := testSigner("stream provider").Address()
	hs := newHeldProviderStore(t, p, nil)
	e := newEnvStore(t, hs, newFakeChain(testHermes), func(c *Config) { c.CommitDelay = 500 * time.Millisecond; c.CPUSlots = 1 })
	for _, c := range cs {
		e.chain.register(c.Address(), 10_000)
	}
	ctx := context.Background()
	send := func(i int) chan error {
		errs := make(chan error, 1)
		go func() {
			_, err := e.svc.Exchange(ctx, msg(t, cs[i], p, int64(i+1), 100, 100, secret(fmt.Sprint("stream", i))))
			errs <- err
		}()
		return errs
	}
	// The first two in one commit, as in TestCommitWaitsForAcceptsOnTheirWay.
	first := send(0)
	<-hs.entered
	second := send(1)
	waitComing(t, e.svc, p, 2)
	close(hs.release)
	for _, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	third := send(2)
	time.Sleep(50 * time.Millisecond)
	fourth := send(3)
	for _, ch := range []chan error{third, fourth} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if got := hs.sizes(); !slices.Equal(got, []int{2, 2}) {
		t.Errorf("group commits of %v accepts, want 2 and 2", got)
	}
	if took := time.Since(start); took > 500*time.Millisecond+time.Second {
		t.Errorf("the stream's commit took %v, more than its delay", took)
	}
}
