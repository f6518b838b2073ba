package hermes

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openmyst/openmyst/hermes/api"
	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/payments"
)

// floorChildEnv makes the test binary a floor child (runFloorChildIfAsked):
// its value is the SQLite file to store the accepts in, or floorNoStore.
const floorChildEnv = "HERMES_TEST_FLOOR_CHILD_DB"

// floorNoStore is floorChildEnv's value for a floor without a store.
const floorNoStore = "-"

// floorServer is the floor of an exchange accept, for BenchmarkExchange's
// "floor" and "floor-nostore" rows: what every accept path must do and
// nothing more. It serves api.PathExchange with the hermes' own net/http
// server (Serve) and, per request: reads the body as the hermes does
// (readBody), decodes it with the hermes' decoder
// (payments.DecodeExchangeMessage), recovers the two consumer signatures
// (RecoverConsumerDigest, as verify-only does), signs a hermes promise with
// the operator key (payments.Promise.Sign, as the hermes does) and, with a
// store, stores the accept durably through the Service's own group
// committer (commitLoop: one store.Commit per batch, MaxBatch 64 and
// CommitDelay as the httpproc child's) before answering 200 with the
// promise (writeExchange, as the hermes does). No acceptance rule runs and
// no state is read: the promise's amount is the agreement total, the
// consumer's stored amounts are the promise's, its channel is the zero
// address; the only state kept is each identity's version counter, which
// store.Commit needs (each accept extends its consumer's and provider's
// previous row).
type floorServer struct {
	operator identity.Signer
	reg      *prometheus.Registry
	// st and svc are nil without a store; svc's committers are all of the
	// Service it uses.
	st  store.Store
	svc *Service
	// ps is every op's provider state: the committer bumps its epoch when
	// a commit fails, after which every op fails (the version counters
	// are ahead of the store; a floor does not recover).
	ps providerState
	// mu orders the version counters with the ops' queueing.
	mu                   sync.Mutex
	consumers, providers map[common.Address]int64
}

// newFloorServer opens a floor on the SQLite file path (floorNoStore:
// without a store). Close releases the store.
func newFloorServer(ctx context.Context, path string) (*floorServer, error) {
	f := &floorServer{operator: testSigner("operator"), reg: prometheus.NewRegistry(),
		consumers: map[common.Address]int64{}, providers: map[common.Address]int64{}}
	if path == floorNoStore {
		return f, nil
	}
	st, err := store.OpenSQLite(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	svc, err := New(Config{ChainID: testChainID, HermesID: testHermes, Operator: f.operator, SettleInterval: time.Hour, Metrics: NewMetrics(f.reg),
		MaxBatch: 64, CommitDelay: benchCommitDelay()}, st, newFakeChain(testHermes))
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("floor: %w", err)
	}
	f.st, f.svc = st, svc
	return f, nil
}

// Close closes the store, if any.
func (f *floorServer) Close() error {
	if f.st == nil {
		return nil
	}
	return f.st.Close()
}

// serve runs the group committer (with a store) and serves on ln until
// ctx ends.
func (f *floorServer) serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	if f.svc != nil {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f.svc.Run(ctx) }()
	}
	mux := http.NewServeMux()
	mux.HandleFunc(http.MethodPost+" "+api.PathExchange, f.handleExchange)
	mux.Handle("GET /metrics", promhttp.HandlerFor(f.reg, promhttp.HandlerOpts{}))
	err := Serve(ctx, ln, mux)
	wg.Wait()
	return err
}

func (f *floorServer) handleExchange(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeErr(w, err)
		return
	}
	m, err := payments.DecodeExchangeMessage(body)
	if err != nil {
		writeErr(w, reject(CodeBadRequest, "%v", err))
		return
	}
	consumer, digest, err := m.RecoverConsumerDigest()
	if err != nil {
		writeErr(w, &Error{Code: CodeBadSignature, Msg: "consumer signature does not verify", Err: err})
		return
	}
	if f.svc != nil {
		// Counted as coming, as the hermes counts a request about to run
		// its rules: the committer's next batch waits for it.
		exp := f.svc.expect(m.Provider)
		defer exp.done(false)
	}
	hp := payments.Promise{ChainID: m.ChainID, ChannelID: payments.ProviderChannelID(m.Provider, m.HermesID),
		Amount: m.AgreementTotal, Fee: new(big.Int), Hashlock: m.Promise.Hashlock}
	if err := hp.Sign(f.operator); err != nil {
		writeErr(w, unavailable("sign hermes promise", err))
		return
	}
	if f.svc != nil {
		if err := f.commit(m, consumer, digest, hp); err != nil {
			writeErr(w, err)
			return
		}
	}
	writeExchange(w, &Result{Promise: hp})
}

// commit queues m's accept with its consumer's and provider's next
// versions to the group committer and waits until it is stored.
func (f *floorServer) commit(m *payments.ExchangeMessage, consumer common.Address, digest [32]byte, hp payments.Promise) error {
	p := &m.Promise
	o := &op{ps: &f.ps, done: make(chan error, 1), a: store.Accept{
		Exchange: store.Exchange{Digest: digest, Consumer: consumer, Provider: m.Provider, AgreementID: m.AgreementID,
			AgreementTotal: m.AgreementTotal, ConsumerPromise: *p, HermesPromise: hp, ExchangeSignature: m.Signature},
		Consumer: store.Consumer{Identity: consumer, Promised: p.Amount, Consumed: p.Amount},
		Provider: store.Provider{Identity: m.Provider, Earned: hp.Amount},
	}}
	// Versions are taken and the op queued under one lock, so each
	// identity's accepts reach the committer in version order.
	f.mu.Lock()
	o.a.Consumer.Version = f.consumers[consumer]
	o.a.Provider.Version = f.providers[m.Provider]
	select {
	case f.svc.committerFor(m.Provider).ops <- o:
	case <-f.svc.stopping:
		f.mu.Unlock()
		return unavailable("floor is shutting down", nil)
	}
	f.consumers[consumer]++
	f.providers[m.Provider]++
	f.mu.Unlock()
	return f.svc.wait(o)
}

// runFloorChildIfAsked serves a floorServer when the test binary is
// re-executed as a floor child (floorChildEnv): it prints "ADDR host:port"
// and serves until SIGTERM, as runChildIfAsked.
func runFloorChildIfAsked() bool {
	path := os.Getenv(floorChildEnv)
	if path == "" {
		return false
	}
	childMain("floor child", func(ctx context.Context) error {
		f, err := newFloorServer(ctx, path)
		if err != nil {
			return err
		}
		ln, err := listenChild()
		if err != nil {
			return errors.Join(err, f.Close())
		}
		return errors.Join(f.serve(ctx, ln), f.Close())
	})
	return true
}

// benchFloorProc is BenchmarkExchange's "floor" row (withStore) and
// "floor-nostore" row: a floorServer in a child process, loaded and
// measured as the httpproc row's hermes (benchChildProc).
func benchFloorProc(b *testing.B, withStore bool, work [][]*payments.ExchangeMessage, verify benchResult) {
	path, what := floorNoStore, "floor without a store"
	var stored func() (int64, error)
	if withStore {
		path = filepath.Join(b.TempDir(), "floor.db")
		stored, what = storedExchanges(path), "floor on SQLite"
	}
	benchChildProc(b, func() *child { return startChildEnv(b, floorChildEnv+"="+path) }, work, verify, what+", in a child process", stored)
}

// TestFloorServerStoresAccepts: the floor answers every message with a
// promise the operator signed for the message's provider, and (with a
// store) has stored every accepted message when it answers.
func TestFloorServerStoresAccepts(t *testing.T) {
	for _, withStore := range []bool{true, false} {
		t.Run(fmt.Sprint("store=", withStore), func(t *testing.T) {
			path := floorNoStore
			if withStore {
				path = filepath.Join(t.TempDir(), "floor.db")
			}
			ctx, cancel := context.WithCancel(context.Background())
			f, err := newFloorServer(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- f.serve(ctx, ln) }()
			defer func() {
				cancel()
				if err := <-served; err != nil {
					t.Error(err)
				}
				if err := f.Close(); err != nil {
					t.Error(err)
				}
			}()

			// 4 consumers, 5 messages each, over 2 providers: each
			// consumer's and provider's accepts chain their versions.
			provs := []common.Address{testSigner("floor provider 0").Address(), testSigner("floor provider 1").Address()}
			work := make([][]*payments.ExchangeMessage, 4)
			for c := range work {
				cs := testSigner(fmt.Sprint("floor consumer ", c))
				for i := range 5 {
					work[c] = append(work[c], msg(t, cs, provs[(c+i)%2], int64(c), int64(10*(i+1)), int64(10*(i+1)), secret(fmt.Sprint("floor", c, i))))
				}
			}
			hc := &http.Client{}
			defer hc.CloseIdleConnections()
			var wg sync.WaitGroup
			for c := range work {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, m := range work[c] {
						r, err := postExchange(hc, ln.Addr().String(), m)
						if err != nil || r.status != http.StatusOK {
							t.Errorf("consumer %d: %+v %v", c, r, err)
							return
						}
						signer, err := r.resp.Promise.RecoverSigner()
						if err != nil || signer != testSigner("operator").Address() ||
							r.resp.Promise.ChannelID != payments.ProviderChannelID(m.Provider, testHermes) || r.resp.Promise.Hashlock != m.Promise.Hashlock {
							t.Errorf("consumer %d: promise %+v signed by %s (%v)", c, r.resp.Promise, signer.Hex(), err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if !withStore || t.Failed() {
				return
			}
			stats, err := f.st.Stats(ctx)
			if err != nil || stats.Exchanges != 20 || stats.Consumers != 4 || stats.Providers != 2 {
				t.Fatalf("stored %+v (%v), want 20 exchanges of 4 consumers to 2 providers", stats, err)
			}
		})
	}
}
