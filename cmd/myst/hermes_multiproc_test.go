package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/money"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/hermes/store/pgtest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/payments"
)

// hermesProc is one `myst hermes` OS process.
type hermesProc struct {
	cmd  *exec.Cmd
	base string
	out  bytes.Buffer
}

// startHermesProc runs `myst hermes` as its own OS process (this test
// binary re-executed as the myst binary) against the chain at rpc, with
// its state in dsn, and waits until its API answers. The test's cleanup
// stops it with SIGTERM and waits for it.
func startHermesProc(t *testing.T, rpc, dep, dsn string) *hermesProc {
	t.Helper()
	port := mysttest.FreePort(t)
	p := &hermesProc{base: "http://127.0.0.1:" + strconv.Itoa(port)}
	p.cmd = exec.Command(os.Args[0], "--data-dir", t.TempDir(), "--log-level", "warn", "hermes",
		"--chain.rpc", rpc, "--chain.deployment", dep, "--hermes.db", dsn,
		"--hermes.listen", "127.0.0.1:"+strconv.Itoa(port), "--hermes.settle-interval", "1h", "--hermes.max-unrevealed", "0")
	p.cmd.Env = append(os.Environ(), "MYST_TEST_RUN_MAIN=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = p.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("myst hermes %s: %v\n%s", p.base, waitErr, p.out.String())
			}
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-exited
			t.Errorf("myst hermes %s did not stop on SIGTERM", p.base)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(p.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-exited:
			t.Fatalf("myst hermes exited: %v\n%s", waitErr, p.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("myst hermes did not come up: %v", err)
		}
	}
}

// exchangeOutcome is one process's final answer to one message.
type exchangeOutcome struct {
	status   int
	code     string
	promise  *payments.Promise
	replayed bool
}

// postExchangeRetry posts m to a hermes until the answer is final: 200 or
// a 4xx rejection. 503 ("unavailable": a commit lost a race against the
// other process, or a transient store error) is retried.
func postExchangeRetry(hc *http.Client, base string, m *payments.ExchangeMessage) (exchangeOutcome, int, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return exchangeOutcome{}, 0, err
	}
	for try := 0; ; try++ {
		res, err := hc.Post(base+"/v1/exchange", "application/json", bytes.NewReader(body))
		if err != nil {
			return exchangeOutcome{}, try, err
		}
		raw, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return exchangeOutcome{}, try, err
		}
		switch {
		case res.StatusCode == http.StatusOK:
			var wire struct {
				Promise  json.RawMessage `json:"promise"`
				Replayed bool            `json:"replayed"`
			}
			if err := json.Unmarshal(raw, &wire); err != nil {
				return exchangeOutcome{}, try, fmt.Errorf("decode reply %s: %w", raw, err)
			}
			p, err := payments.DecodePromise(wire.Promise)
			if err != nil {
				return exchangeOutcome{}, try, fmt.Errorf("decode promise %s: %w", wire.Promise, err)
			}
			return exchangeOutcome{status: 200, promise: p, replayed: wire.Replayed}, try, nil
		case res.StatusCode == http.StatusServiceUnavailable && try < 200:
			time.Sleep(time.Duration(1+try%5) * time.Millisecond)
			continue
		default:
			var eb struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			_ = json.Unmarshal(raw, &eb)
			if res.StatusCode >= 500 {
				return exchangeOutcome{}, try, fmt.Errorf("status %d: %s", res.StatusCode, raw)
			}
			return exchangeOutcome{status: res.StatusCode, code: eb.Error.Code}, try, nil
		}
	}
}

// TestHermesProcessesSharePostgres: two `myst hermes` OS processes on one
// PostgreSQL database (and one dev chain) serve the same consumers, who
// try to double-spend through them. Each consumer signs a cumulative chain
// of promises a_i = i*step for two honest sessions and, for every a_i, a
// conflicting message that promises the same money to a third provider.
// The processes race on the same consumer and providers, so only the
// database can order them: for two consumers the honest chain goes to one
// process and the conflicting one to the other, at once; for the third,
// every message goes to both processes from four goroutines. Afterwards,
// per consumer: the providers together were credited exactly what the
// consumer's accepted promises cover and never more than its highest
// signed promise, every acknowledged hermes promise is stored unchanged,
// no message was accepted twice and no provider got the same cumulative
// amount twice.
func TestHermesProcessesSharePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev chain, PostgreSQL schema and two hermes processes")
	}
	dsn := pgtest.FreshSchema(t, testenv.RequirePostgres(t))
	rpc, depPath := startChainDev(t)
	ctx := context.Background()
	dep, err := chain.LoadDeployment(depPath)
	if err != nil {
		t.Fatal(err)
	}
	c := devchaintest.ClientAt(ctx, t, rpc, dep, nil)
	const consumers = 3
	var signers [consumers]*identity.KeySigner
	for k := range signers {
		key := keytest.Key(t)
		signers[k] = identity.NewKeySigner(key)
		if _, err := c.Mint(ctx, c.ChannelAddress(signers[k].Address(), dep.Hermes), money.MYST(5)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.RegisterIdentity(ctx, signers[k], dep.Hermes, nil, signers[k].Address()); err != nil {
			t.Fatal(err)
		}
	}

	// Both processes start together on the empty schema (their migrations
	// race too).
	procs := make([]*hermesProc, 2)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); procs[i] = startHermesProc(t, rpc, depPath, dsn) }()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// First the two split consumers at once, then the third: a process
	// reloads all its cached state whenever one of its commits fails, and
	// the third consumer's shared messages make that happen often, which
	// would hide a missing database check from the split ones.
	fresh := make([][2]int, consumers)
	for _, phase := range [][]int{{0, 1}, {2}} {
		for _, k := range phase {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fresh[k] = raceOneConsumer(t, dep, c, st, procs, signers[k], k, k < 2)
			}()
		}
		wg.Wait()
	}
	if t.Failed() {
		t.FailNow()
	}
	var total [2]int
	for _, f := range fresh {
		total[0] += f[0]
		total[1] += f[1]
	}
	if total[0] == 0 || total[1] == 0 {
		t.Fatalf("one process accepted nothing new (%v): the processes did not share the work", total)
	}
	stats, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Exchanges != int64(total[0]+total[1]) {
		t.Fatalf("store holds %d exchanges, the processes newly accepted %d", stats.Exchanges, total[0]+total[1])
	}
}

// raceOneConsumer is TestHermesProcessesSharePostgres for consumer number
// k (its own three providers); it returns how many messages each process
// newly accepted. With split, the honest stream goes only to one process
// and the conflicting one only to the other: then no message reaches both
// (no shared digest that would make a stale process fail and reload), and
// only the versions in the database stop both processes crediting the
// same money. Otherwise every message goes to both processes.
func raceOneConsumer(t *testing.T, dep chain.Deployment, c *chain.Client, st store.Store, procs []*hermesProc, consumer identity.Signer, k int, split bool) [2]int {
	ctx := context.Background()
	channel := c.ChannelAddress(consumer.Address(), dep.Hermes)
	const n = 40
	step := big.NewInt(1e15)
	var provs [3]common.Address
	for i := range provs {
		provs[i] = common.BigToAddress(big.NewInt(int64(0xabc000 + 16*k + i)))
	}
	chainID := new(big.Int).SetUint64(dep.ChainID)
	newMsg := func(prov common.Address, agreement int64, total, amount *big.Int) *payments.ExchangeMessage {
		_, lock, err := payments.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		m := &payments.ExchangeMessage{
			Promise:     payments.Promise{ChainID: chainID, ChannelID: payments.ConsumerChannelID(channel), Amount: amount, Fee: new(big.Int), Hashlock: lock},
			AgreementID: big.NewInt(agreement), AgreementTotal: total, Provider: prov, HermesID: dep.Hermes, ChainID: chainID,
		}
		if err := m.Sign(consumer); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// streams[0]: the honest chain, alternating between providers 0 and 1;
	// streams[1]: for each a_i the same amount promised to provider 2 for
	// one step more.
	var streams [2][]*payments.ExchangeMessage
	totals := [2]*big.Int{new(big.Int), new(big.Int)}
	for i := int64(1); i <= n; i++ {
		amount := new(big.Int).Mul(step, big.NewInt(i))
		p := i % 2
		totals[p] = new(big.Int).Add(totals[p], step)
		streams[0] = append(streams[0], newMsg(provs[p], 10+p, totals[p], amount))
		// Each conflicting message is its own agreement worth one step, so
		// it is acceptable exactly when the honest one of the same amount
		// is not: whichever process holds a stale view would take it.
		streams[1] = append(streams[1], newMsg(provs[2], 1000+i, step, amount))
	}
	highest := new(big.Int).Mul(step, big.NewInt(n))

	hc := &http.Client{Timeout: 30 * time.Second}
	fresh := [2]int{} // per process: acknowledged as newly accepted
	// Warm-up: the first two promises go to different processes, one
	// after the other, so both hold this consumer's state and one of them
	// holds it stale when the race starts: its first accept in the race
	// must lose against the database and be retried.
	for i := range 2 {
		pi := (k + i) % 2
		o, _, err := postExchangeRetry(hc, procs[pi].base, streams[0][i])
		if err != nil || o.status != http.StatusOK || o.replayed {
			t.Errorf("consumer %d warm-up message %d to process %d: %+v %v", k, i, pi, o, err)
			return [2]int{}
		}
		fresh[pi]++
	}

	// outcomes[stream][msg][process]
	var outcomes [2][n][2]exchangeOutcome
	var retries [2]atomic.Int64 // per process: 503 answers retried
	var wg sync.WaitGroup
	for s := range streams {
		for pi, p := range procs {
			if split && pi != (k+s)%2 {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i, m := range streams[s] {
					o, tries, err := postExchangeRetry(hc, p.base, m)
					if err != nil {
						t.Errorf("consumer %d stream %d message %d to process %d: %v", k, s, i, pi, err)
						return
					}
					retries[pi].Add(int64(tries))
					outcomes[s][i][pi] = o
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		return [2]int{}
	}

	fail := func(format string, args ...any) [2]int {
		t.Errorf("consumer %d: "+format, append([]any{k}, args...)...)
		return [2]int{}
	}

	accepted := 0 // distinct messages some process acknowledged
	maxAgreement := map[string]*big.Int{}
	maxPromise := new(big.Int)
	issued := map[string]bool{} // provider/hermes promise amount
	for s := range streams {
		for i, m := range streams[s] {
			var ack *payments.Promise
			for pi := range procs {
				o := outcomes[s][i][pi]
				if o.status != http.StatusOK {
					continue
				}
				if err := o.promise.Verify(dep.HermesOperator); err != nil {
					return fail("stream %d message %d: hermes promise not signed by the operator: %v", s, i, err)
				}
				if !o.replayed {
					fresh[pi]++
				}
				if ack != nil && !ack.Equal(o.promise) {
					return fail("stream %d message %d: the two processes acknowledged different promises: %s and %s", s, i, ack.Amount, o.promise.Amount)
				}
				ack = o.promise
			}
			d, _ := m.Digest()
			e, err := st.ExchangeByDigest(ctx, m.Promise.Hashlock, d)
			if ack == nil {
				if err == nil {
					return fail("stream %d message %d: stored but every process refused it (%+v)", s, i, outcomes[s][i])
				}
				continue
			}
			if err != nil {
				return fail("stream %d message %d: acknowledged but not stored: %v", s, i, err)
			}
			if !e.HermesPromise.Equal(ack) {
				return fail("stream %d message %d: stored hermes promise %s differs from the acknowledged %s", s, i, e.HermesPromise.Amount, ack.Amount)
			}
			accepted++
			key := m.Provider.Hex() + "/" + ack.Amount.String()
			if issued[key] {
				return fail("provider %s got hermes promise amount %s twice", m.Provider.Hex(), ack.Amount)
			}
			issued[key] = true
			ak := m.Provider.Hex() + "/" + m.AgreementID.String()
			if maxAgreement[ak] == nil || maxAgreement[ak].Cmp(m.AgreementTotal) < 0 {
				maxAgreement[ak] = m.AgreementTotal
			}
			if m.Promise.Amount.Cmp(maxPromise) > 0 {
				maxPromise = m.Promise.Amount
			}
		}
	}
	credited := new(big.Int) // Σ over (provider, agreement) of the highest acknowledged total
	for _, tot := range maxAgreement {
		credited.Add(credited, tot)
	}
	earned := new(big.Int)
	for _, p := range provs {
		ps, err := st.Provider(ctx, p)
		if err != nil {
			return fail("%v", err)
		}
		earned.Add(earned, ps.Earned)
		if ps.Version > 0 {
			latest, err := st.LatestProviderExchange(ctx, p)
			if err != nil || latest.HermesPromise.Amount.Cmp(ps.Earned) != 0 {
				return fail("provider %s earned %s but its latest promise is %v (%v)", p.Hex(), ps.Earned, latest.HermesPromise.Amount, err)
			}
		}
	}
	cs, _, err := st.Consumer(ctx, consumer.Address())
	if err != nil {
		return fail("%v", err)
	}
	t.Logf("consumer %d (split %v): %d of %d messages accepted (process 0: %d new, process 1: %d new; 503 retried %d and %d times); credited %s of the highest promise %s",
		k, split, accepted, 2*n, fresh[0], fresh[1], retries[0].Load(), retries[1].Load(), earned, highest)
	switch {
	case earned.Cmp(credited) != 0:
		return fail("providers earned %s, the acknowledged agreement totals sum to %s", earned, credited)
	case cs.Consumed.Cmp(earned) != 0:
		return fail("consumed %s, providers earned %s", cs.Consumed, earned)
	case cs.Promised.Cmp(maxPromise) != 0:
		return fail("promised %s, highest acknowledged promise %s", cs.Promised, maxPromise)
	case earned.Cmp(cs.Promised) > 0 || cs.Promised.Cmp(highest) > 0:
		return fail("double spend: providers earned %s, consumer's highest accepted promise %s, highest signed %s", earned, cs.Promised, highest)
	case retries[0].Load()+retries[1].Load() == 0:
		return fail("no process ever lost a commit race (503): the race did not happen")
	}
	return fresh
}
