package main

import (
	"context"
	"crypto/ecdsa"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/sync/errgroup"

	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/internal/tick"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/pingpong/paystore"
)

// TestBenchServiceRSS runs `myst service` as its own process and N
// concurrent consumer sessions against it for a while (production payment
// timing), and reports the provider process's RSS; every session must
// survive. Only with MYST_BENCH=1 (MYST_BENCH_SESSIONS, MYST_BENCH_SECONDS
// override 100 and 60).
func TestBenchServiceRSS(t *testing.T) {
	testenv.RequireBench(t)
	n := testenv.EnvInt("MYST_BENCH_SESSIONS", 100)
	seconds := testenv.EnvInt("MYST_BENCH_SECONDS", 60)
	ctx := testenv.Timeout(t, time.Duration(seconds)*time.Second+10*time.Minute)
	port := mysttest.WebServer(t, strings.Repeat("x", 1024))
	d := mysttest.Devnet(ctx, t)
	dd := t.TempDir()
	_, pf := newDefaultIdentity(t, dd, "provider-pw")
	cmd, lines := mysttest.StartService(t, dd, mysttest.FreePort(t), mysttest.ServiceArgs(d, pf,
		"--location.country", "FR", "--exit.allow", "tcp:127.0.0.1/32 port "+port)...)
	var seen []string
	mysttest.WaitLine(t, lines, "tequilapi: http://", &seen)
	rss := func() uint64 { return testenv.RSSKiB(cmd.Process.Pid) }

	c, ps := mysttest.Proposals(ctx, t, d, "FR", 1)
	dep := d.Chain.Deployment()
	store := paystore.New(c.DB)
	mgrs := make([]*consumer.Manager, n)
	hosts := make([]*p2p.Node, n)
	defer func() {
		for _, h := range hosts {
			if h != nil {
				h.Close()
			}
		}
	}()
	var g errgroup.Group
	g.SetLimit(8)
	for i := 0; i < n; i++ {
		g.Go(func() error {
			k, err := crypto.GenerateKey()
			if err != nil {
				return err
			}
			if err := fundConsumer(ctx, d, k); err != nil {
				return err
			}
			s := identity.NewKeySigner(k)
			ch := d.Client.ChannelAddress(s.Address(), dep.Hermes)
			ledger, err := store.Channel(d.Client.ChainID(), payments.ConsumerChannelID(ch), money.MYST(10))
			if err != nil {
				return err
			}
			if hosts[i], err = p2p.New(p2p.Config{ListenAddrs: []string{}, DHTMode: p2p.DHTClient, Log: slog.New(slog.DiscardHandler)}); err != nil {
				return err
			}
			mgrs[i], err = consumer.New(consumer.Config{Signer: s, ChainID: d.Client.ChainID(), Hermes: dep.Hermes, Host: hosts[i].Host, Channel: ledger, Proxy: node.UserspaceProxy, Log: slog.New(slog.DiscardHandler)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	idle := rss()
	conns := make([]*consumer.Connection, n)
	for i, m := range mgrs {
		var err error
		if conns[i], err = m.Connect(ctx, ps[0], consumer.Options{}); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	trafficCtx, stop := context.WithCancel(ctx)
	var traffic sync.WaitGroup
	for _, conn := range conns {
		traffic.Add(1)
		go func() {
			defer traffic.Done()
			tr := &http.Transport{DialContext: conn.DialContext, DisableKeepAlives: true}
			tick.Every(trafficCtx, 2*time.Second, func(context.Context) {
				if resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://127.0.0.1:" + port); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}()
	}
	peak := idle
	for end := time.Now().Add(time.Duration(seconds) * time.Second); time.Now().Before(end); {
		time.Sleep(time.Second)
		peak = max(peak, rss())
	}
	stop()
	traffic.Wait()
	dropped := 0
	paid := new(big.Int)
	for _, conn := range conns {
		if !conn.Status().Running {
			dropped++
		}
		if err := conn.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
		paid.Add(paid, conn.PayerStats().Paid)
	}
	t.Logf("myst service process with %d concurrent sessions for %ds: RSS idle %d MiB, peak %d MiB (+%d KiB per session); dropped %d; consumers paid %s wei",
		n, seconds, idle>>10, peak>>10, (peak-idle)/uint64(n), dropped, paid)
	if dropped != 0 {
		t.Fatalf("%d sessions dropped", dropped)
	}
}

// fundConsumer registers key's identity and funds its channel with 10 MYST.
func fundConsumer(ctx context.Context, d *node.Devnet, k *ecdsa.PrivateKey) error {
	s := identity.NewKeySigner(k)
	hermesID := d.Chain.Deployment().Hermes
	if _, err := d.Client.Mint(ctx, d.Client.ChannelAddress(s.Address(), hermesID), money.MYST(10)); err != nil {
		return err
	}
	return node.EnsureRegistered(ctx, d.Client, s, hermesID, nil)
}
