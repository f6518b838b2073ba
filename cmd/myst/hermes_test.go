package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/hermes/api"
	hermesclient "github.com/openmyst/openmyst/hermes/client"
	"github.com/openmyst/openmyst/hermes/tlstest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/storage/storagetest"
)

// TestHermesAgainstChainDev runs `myst hermes` against `myst chain dev`
// (both in-process), serving HTTPS with a certificate from a throwaway CA
// that the client trusts: a registered consumer's exchange message gets a
// promise signed by the deployment's hermes operator (checked against the
// chain), and the provider settles that promise on chain. Plain HTTP to
// the TLS port fails, and a non-loopback listen address without TLS is
// refused.
func TestHermesAgainstChainDev(t *testing.T) {
	ctx := testenv.Long(t, "starts a dev chain", 2*time.Minute)
	rpc, depPath := startChainDev(t)
	port := mysttest.FreePort(t)
	dd := t.TempDir()
	ca := tlstest.New(t, t.TempDir())
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}}}
	defer https.CloseIdleConnections()
	r := startCLI(dd, "hermes", "--chain.rpc", rpc, "--chain.deployment", depPath,
		"--hermes.listen", "127.0.0.1:"+strconv.Itoa(port), "--hermes.settle-interval", "1h", "--tls.cert", ca.CertFile, "--tls.key", ca.KeyFile)
	defer func() {
		if err := r.stop(); err != nil {
			t.Errorf("myst hermes: %v", err)
		}
		if !strings.Contains(r.out.String(), "https://127.0.0.1:") {
			t.Errorf("myst hermes did not announce its https URL:\n%s", r.out.String())
		}
	}()
	base := "https://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := https.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("myst hermes did not come up: %v", err)
		}
		select {
		case err := <-r.done:
			r.done <- err // for the deferred check, which waits on done
			t.Fatalf("myst hermes exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}

	if res, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered on the TLS port")
		}
	}
	// Plain HTTP on a non-loopback address is refused before listening.
	root, _ := newTestRoot()
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"--data-dir", t.TempDir(), "--log-level", "warn", "hermes", "--chain.rpc", rpc, "--chain.deployment", depPath,
		"--hermes.listen", "0.0.0.0:" + strconv.Itoa(mysttest.FreePort(t))})
	if err := root.ExecuteContext(ctx); err == nil || !strings.Contains(err.Error(), "--tls.cert") {
		t.Fatalf("plain HTTP on 0.0.0.0: %v, want a refusal naming --tls.cert", err)
	}

	dep, err := chain.LoadDeployment(depPath)
	if err != nil {
		t.Fatal(err)
	}
	c := devchaintest.ClientAt(ctx, t, rpc, dep, nil)
	newSigner := func() *identity.KeySigner {
		k := keytest.Key(t)
		return identity.NewKeySigner(k)
	}
	consumer, provider := newSigner(), newSigner()
	channel := c.ChannelAddress(consumer.Address(), dep.Hermes)
	if _, err := c.Mint(ctx, channel, money.MYST(5)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []identity.Signer{consumer, provider} {
		if _, _, err := c.RegisterIdentity(ctx, s, dep.Hermes, nil, s.Address()); err != nil {
			t.Fatal(err)
		}
	}

	db := storagetest.Open(t, filepath.Join(t.TempDir(), "node.db"))
	hl, err := hermesclient.NewStorageHashlocks(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := hermesclient.New(base, hl, hermesclient.Options{Chain: node.HermesTerms{C: c}, HermesID: dep.Hermes, RootCAs: ca.Pool})
	if err != nil {
		t.Fatal(err)
	}
	info, err := hc.Info(ctx)
	if err != nil || info.ChainID != fmt.Sprint(dep.ChainID) {
		t.Fatalf("info %+v %v", info, err)
	}
	lock, err := hc.NewHashlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chainID := new(big.Int).SetUint64(dep.ChainID)
	m := &payments.ExchangeMessage{
		Promise:     payments.Promise{ChainID: chainID, ChannelID: payments.ConsumerChannelID(channel), Amount: money.MYST(2), Fee: big.NewInt(0), Hashlock: lock},
		AgreementID: big.NewInt(1), AgreementTotal: money.MYST(2), Provider: provider.Address(), HermesID: dep.Hermes, ChainID: chainID,
	}
	if err := m.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	p, err := hc.RequestPromise(ctx, m) // checks the promise against the chain
	if err != nil {
		t.Fatal(err)
	}
	entry, err := hl.Get(ctx, lock)
	if err != nil || !entry.Revealed {
		t.Fatalf("hashlock entry %+v %v", entry, err)
	}
	before, _ := c.TokenBalance(ctx, provider.Address())
	if _, err := c.SettleProviderPromise(ctx, dep.Hermes, provider.Address(), *p, entry.R); err != nil {
		t.Fatalf("provider settlement: %v", err)
	}
	after, _ := c.TokenBalance(ctx, provider.Address())
	if got := new(big.Int).Sub(after, before); got.Sign() <= 0 || got.Cmp(money.MYST(2)) > 0 {
		t.Fatalf("provider received %s wei for a 2 MYST promise", got)
	}

	// A hermes that answers the next message with a promise signed by
	// another key (here: a tampering proxy in front of the real one) gets no
	// R: the client checks the signer against the operator on chain.
	impostor := newSigner()
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = https.Transport
	rp.ModifyResponse = func(res *http.Response) error {
		if res.Request.URL.Path != "/v1/exchange" || res.StatusCode != http.StatusOK {
			return nil
		}
		var er api.ExchangeResponse
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		res.Body.Close()
		if err := json.Unmarshal(raw, &er); err != nil {
			return err
		}
		if err := er.Promise.Sign(impostor); err != nil {
			return err
		}
		if raw, err = json.Marshal(er); err != nil {
			return err
		}
		res.Body = io.NopCloser(bytes.NewReader(raw))
		res.ContentLength = int64(len(raw))
		res.Header.Set("Content-Length", strconv.Itoa(len(raw)))
		return nil
	}
	proxy := httptest.NewServer(rp)
	defer proxy.Close()
	lied, err := hermesclient.New(proxy.URL, hl, hermesclient.Options{Chain: node.HermesTerms{C: c}, HermesID: dep.Hermes, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	lock2, err := lied.NewHashlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m2 := &payments.ExchangeMessage{
		Promise:     payments.Promise{ChainID: chainID, ChannelID: payments.ConsumerChannelID(channel), Amount: money.MYST(3), Fee: big.NewInt(0), Hashlock: lock2},
		AgreementID: big.NewInt(1), AgreementTotal: money.MYST(3), Provider: provider.Address(), HermesID: dep.Hermes, ChainID: chainID,
	}
	if err := m2.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	if _, err := lied.RequestPromise(ctx, m2); !errors.Is(err, hermesclient.ErrUntrustedPromise) {
		t.Fatalf("promise signed by an impostor: %v, want ErrUntrustedPromise", err)
	}
	if e2, err := hl.Get(ctx, lock2); err != nil || e2.Revealed || e2.Promise != nil {
		t.Fatalf("impostor's promise stored or revealed: %+v %v", e2, err)
	}
	pv, err := hc.Provider(ctx, provider.Address().Hex())
	if err != nil || pv.Unrevealed != 1 {
		t.Fatalf("hermes view %+v %v: the second R must stay unrevealed", pv, err)
	}
}
