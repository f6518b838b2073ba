package node

import (
	"context"
	"crypto/ecdsa"
	"io"
	"math/big"
	"net"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/internal/tick"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/pingpong/paystore"
	"github.com/openmyst/openmyst/session/provider"
	"github.com/openmyst/openmyst/tunnel"
)

// TestBenchSessions measures the session layer on the loopback devnet
// with production payment timing (30 s invoices, 10 s keepalives):
// connect -> first byte (p50/p90, against a direct loopback fetch as the
// baseline measured in the same run), payment control traffic per
// session-minute, and N concurrent consumer sessions against one userspace
// provider (no session dropped, accounting exact, process RSS). It runs
// only with MYST_BENCH=1 (MYST_BENCH_SESSIONS, MYST_BENCH_SECONDS and
// MYST_BENCH_ROUNDS override 100, 60 and 20); results go to
// docs/benchmarks.md.
func TestBenchSessions(t *testing.T) {
	testenv.RequireBench(t)
	nSessions := testenv.EnvInt("MYST_BENCH_SESSIONS", 100)
	seconds := testenv.EnvInt("MYST_BENCH_SECONDS", 60)
	rounds := testenv.EnvInt("MYST_BENCH_ROUNDS", 20)
	ctx := testenv.Timeout(t, time.Duration(seconds)*time.Second+10*time.Minute)
	small := payload(1 << 10)
	srv, rule := startServer(t, small)
	d, c := startDevnetConsumer(ctx, t, DevnetConfig{DataDir: t.TempDir(), Allow: []tunnel.Rule{rule}, Log: testLog()})
	if _, err := c.WaitProposals(ctx, market.Filter{}, 3); err != nil {
		t.Fatal(err)
	}
	prov := d.Providers[0]
	pick, _ := c.Discovery.Cache().Get(prov.Address())

	// 1. connect -> first byte.
	var direct, tunneled []time.Duration
	for i := 0; i < rounds; i++ {
		t0 := time.Now()
		if err := firstByte(ctx, nil, srv.URL); err != nil {
			t.Fatal(err)
		}
		direct = append(direct, time.Since(t0))
		t0 = time.Now()
		conn, err := c.Sessions.Connect(ctx, pick, consumer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := firstByte(ctx, conn.DialContext, srv.URL); err != nil {
			t.Fatal(err)
		}
		tunneled = append(tunneled, time.Since(t0))
		if err := conn.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	dp50, tp50, tp90 := pct(direct, 50), pct(tunneled, 50), pct(tunneled, 90)
	t.Logf("connect->first byte over %d rounds: p50 %s p90 %s; direct loopback fetch p50 %s (ratio %.0fx); target p50 < 300ms",
		rounds, tp50.Round(100*time.Microsecond), tp90.Round(100*time.Microsecond), dp50.Round(10*time.Microsecond), float64(tp50)/float64(dp50))

	// 2 and 3. N concurrent sessions for the duration.
	keys := make([]*ecdsa.PrivateKey, nSessions)
	for i := range keys {
		keys[i] = keytest.Key(t)
	}
	dep := d.Chain.Deployment()
	chainID := d.Client.ChainID()
	store := paystore.New(c.DB)
	mgrs := make([]*consumer.Manager, nSessions)
	var (
		hostsMu sync.Mutex
		hosts   []*p2p.Node
	)
	defer func() {
		for _, h := range hosts {
			h.Close()
		}
	}()
	var g errgroup.Group
	g.SetLimit(8)
	for i := range keys {
		g.Go(func() error {
			s := identity.NewKeySigner(keys[i])
			ch := d.Client.ChannelAddress(s.Address(), dep.Hermes)
			if _, err := d.Client.Mint(ctx, ch, money.MYST(10)); err != nil {
				return err
			}
			if err := EnsureRegistered(ctx, d.Client, s, dep.Hermes, nil); err != nil {
				return err
			}
			ledger, err := store.Channel(chainID, payments.ConsumerChannelID(ch), money.MYST(10))
			if err != nil {
				return err
			}
			// Every consumer is its own libp2p peer, as in the field.
			h, err := p2p.New(p2p.Config{ListenAddrs: []string{}, DHTMode: p2p.DHTClient, Log: testLog()})
			if err != nil {
				return err
			}
			hostsMu.Lock()
			hosts = append(hosts, h)
			hostsMu.Unlock()
			mgrs[i], err = consumer.New(consumer.Config{Signer: s, ChainID: chainID, Hermes: dep.Hermes, Host: h.Host, Channel: ledger, Proxy: UserspaceProxy, Log: testLog()})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		ended = map[string]provider.Ended{}
	)
	prov.Sessions.OnEnded(func(e provider.Ended) { mu.Lock(); ended[e.ID] = e; mu.Unlock() })
	earnedBefore, err := prov.Earnings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rssBefore := testenv.RSSKiB(0)
	conns := make([]*consumer.Connection, nSessions)
	for i, m := range mgrs {
		if conns[i], err = m.Connect(ctx, pick, consumer.Options{}); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	// Each session fetches a little every 2 s for the duration.
	trafficCtx, stop := context.WithCancel(ctx)
	var traffic sync.WaitGroup
	fetchErrs := make([]int, nSessions)
	for i, conn := range conns {
		traffic.Add(1)
		go func() {
			defer traffic.Done()
			tick.Every(trafficCtx, 2*time.Second, func(context.Context) {
				if err := firstByte(ctx, conn.DialContext, srv.URL); err != nil {
					fetchErrs[i]++
				}
			})
		}()
	}
	peakRSS := rssBefore
	for end := time.Now().Add(time.Duration(seconds) * time.Second); time.Now().Before(end); {
		time.Sleep(time.Second)
		peakRSS = max(peakRSS, testenv.RSSKiB(0))
	}
	stop()
	traffic.Wait()
	dropped := 0
	for _, conn := range conns {
		if !conn.Status().Running {
			dropped++
		}
	}
	mu.Lock()
	endedEarly := len(ended)
	mu.Unlock()
	for _, conn := range conns {
		if err := conn.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Accounting: every session's consumer payment equals what the
	// provider got a hermes promise for, and the hermes total matches.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(ended)
		mu.Unlock()
		if n >= nSessions || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	total := new(big.Int)
	var ctl uint64
	var ctlMinutes float64
	mismatch := 0
	mu.Lock()
	for _, conn := range conns {
		e, ok := ended[conn.ID()]
		paid := conn.PayerStats().Paid
		total.Add(total, paid)
		if !ok || e.Stats.Settled.Cmp(paid) != 0 {
			mismatch++
			continue
		}
		ctl += e.ControlBytes
		ctlMinutes += e.Duration.Minutes()
	}
	mu.Unlock()
	earnedAfter, err := prov.Earnings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hermesDelta := new(big.Int).Sub(earnedAfter.Earned, earnedBefore.Earned)
	failed := 0
	for _, n := range fetchErrs {
		failed += n
	}
	t.Logf("%d concurrent sessions for %ds: dropped %d, ended early %d, fetch errors %d, accounting mismatches %d; consumers paid %s wei, hermes credited %s wei",
		nSessions, seconds, dropped, endedEarly, failed, mismatch, total, hermesDelta)
	t.Logf("payment control traffic: %.0f bytes per session-minute (target < 4096)", float64(ctl)/ctlMinutes)
	t.Logf("process RSS (provider + %d consumer tunnels + devnet, one process): before %d MiB, peak %d MiB, +%d KiB per session",
		nSessions, rssBefore>>10, peakRSS>>10, (peakRSS-rssBefore)/uint64(nSessions))
	if dropped != 0 || endedEarly != 0 || mismatch != 0 || hermesDelta.Cmp(total) != 0 {
		t.Fatal("sessions dropped or accounting not exact")
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

// firstByte GETs url (through dial when set) and reads the first byte.
func firstByte(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), url string) error {
	tr := &http.Transport{DisableKeepAlives: true}
	if dial != nil {
		tr.DialContext = dial
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var b [1]byte
	if _, err := io.ReadFull(resp.Body, b[:]); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}
