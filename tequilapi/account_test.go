package tequilapi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// accountEnv is a Tequilapi server with the identity and account routes
// over a real dev chain (go-ethereum, JSON-RPC on 127.0.0.1).
type accountEnv struct {
	*testEnv
	client *chain.Client
	dep    chain.Deployment
	token  string
}

// startDevChain starts one in-memory dev chain for the test; it is closed
// when the test ends.
func startDevChain(t *testing.T) *devchain.Chain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return devchaintest.Start(ctx, t, devchain.Config{Port: 0, Log: slog.New(slog.DiscardHandler)})
}

func newAccountEnv(t *testing.T, dc *devchain.Chain) *accountEnv {
	t.Helper()
	ctx := context.Background()
	c := devchaintest.Client(ctx, t, dc, slog.New(slog.DiscardHandler))
	e := newEnv(t, nil)
	dep := dc.Deployment()
	e.s.Add(AccountRoutes(e.ids, ChainSourceFunc(func(context.Context) (AccountChain, common.Address, error) {
		return c, dep.Hermes, nil
	}), slog.New(slog.DiscardHandler))...)
	ae := &accountEnv{testEnv: e, client: c, dep: dep}
	ae.token = e.login(t)
	return ae
}

// newIdentity creates an identity with passphrase "pw" and unlocks it.
func (e *testEnv) newIdentity(t *testing.T) common.Address {
	t.Helper()
	id, err := e.ids.New(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ids.Unlock(id.Address, "pw"); err != nil {
		t.Fatal(err)
	}
	return id.Address
}

func (e *accountEnv) account(t *testing.T, id common.Address) AccountDTO {
	t.Helper()
	var a AccountDTO
	if resp := e.do(t, "GET", "/identities/"+id.Hex()+"/account", e.token, "", &a); resp.StatusCode != 200 {
		t.Fatalf("GET account: %d", resp.StatusCode)
	}
	return a
}

func mustWei(t *testing.T, s string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("not a wei integer: %q", s)
	}
	return v
}

// TestAccountRoutesOnDevChain drives register, top-up, account, beneficiary
// and settle through HTTP against a real dev chain.
func TestAccountRoutesOnDevChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev chain")
	}
	e := newAccountEnv(t, startDevChain(t))
	id := e.newIdentity(t)
	base := "/identities/" + id.Hex()

	// Auth and unknown identities.
	e.expectError(t, "GET", base+"/account", "", "", 401, CodeUnauthorized)
	e.expectError(t, "POST", base+"/topup", "", `{"amount":"1"}`, 401, CodeUnauthorized)
	unknown := "/identities/0x00000000000000000000000000000000000000aa"
	e.expectError(t, "GET", unknown+"/account", e.token, "", 404, CodeNotFound)
	e.expectError(t, "POST", unknown+"/register", e.token, "", 404, CodeNotFound)
	e.expectError(t, "POST", unknown+"/topup", e.token, `{"amount":"1"}`, 404, CodeNotFound)
	e.expectError(t, "PUT", unknown+"/beneficiary", e.token, `{"address":"0x00000000000000000000000000000000000000bb"}`, 404, CodeNotFound)
	e.expectError(t, "GET", "/identities/0x12/account", e.token, "", 400, CodeValidation)

	// Before registration: channel address known, nothing on it.
	a := e.account(t, id)
	wantCh := e.client.ChannelAddress(id, e.dep.Hermes)
	if a.Registered || a.ChannelDeployed || a.Channel != wantCh.Hex() || a.ChannelBalance != "0" || a.ChannelBalanceWei != "0" ||
		a.Beneficiary != "" || a.Hermes != e.dep.Hermes.Hex() || a.ChainID != e.dep.ChainID || a.TokenBalance != "0" {
		t.Fatalf("account before registration: %+v", a)
	}

	// Bad amounts name the field.
	for _, body := range []string{`{"amount":"1.2.3"}`, `{"amount":"-1"}`, `{"amount":"0.0000000000000000001"}`, `{"amount":"0"}`,
		`{"amount":""}`, `{"amount":" 1"}`, `{"amount":"1e18"}`} {
		eb := e.expectError(t, "POST", base+"/topup", e.token, body, 400, CodeValidation)
		if eb.Fields["amount"] == "" {
			t.Errorf("topup %s: no amount field in %+v", body, eb)
		}
	}
	for _, body := range []string{`{"amount":1.5}`, `{"amount":"1","extra":1}`, `{}`, ``} {
		var er ErrorResponse
		if resp := e.do(t, "POST", base+"/topup", e.token, body, &er); resp.StatusCode != 400 {
			t.Errorf("topup %q: status %d %+v", body, resp.StatusCode, er)
		}
	}
	if eb := e.expectError(t, "POST", base+"/topup", e.token, `{"amount":"0.0000000000000000001"}`, 400, CodeValidation); !strings.Contains(eb.Fields["amount"], "18 decimals") {
		t.Errorf("19 decimals: %+v", eb)
	}

	// Top up before registration increases the balance by exactly the amount.
	var tr TopupResponse
	if resp := e.do(t, "POST", base+"/topup", e.token, `{"amount":"1.5"}`, &tr); resp.StatusCode != 200 {
		t.Fatalf("topup: %d", resp.StatusCode)
	}
	if !tr.Minted || tr.Channel != wantCh.Hex() || tr.Amount != "1.5" || tr.AmountWei != "1500000000000000000" ||
		tr.ChannelBalance != "1.5" || !strings.HasPrefix(tr.TxHash, "0x") || tr.Block == 0 || tr.GasUsed == 0 {
		t.Fatalf("topup answer %+v", tr)
	}
	before := mustWei(t, e.account(t, id).ChannelBalanceWei)
	if resp := e.do(t, "POST", base+"/topup", e.token, `{"amount":"0.000000000000000001"}`, &tr); resp.StatusCode != 200 {
		t.Fatalf("topup 1 wei: %d", resp.StatusCode)
	}
	a = e.account(t, id)
	if got := mustWei(t, a.ChannelBalanceWei); new(big.Int).Sub(got, before).Cmp(big.NewInt(1)) != 0 || a.ChannelBalance != "1.500000000000000001" {
		t.Fatalf("after 1 wei top-up: %s wei (%s MYST), before %s", a.ChannelBalanceWei, a.ChannelBalance, before)
	}

	// Registration needs the identity unlocked.
	e.ids.Lock(id)
	e.expectError(t, "POST", base+"/register", e.token, "", 409, CodeIdentityLocked)
	e.expectError(t, "PUT", base+"/beneficiary", e.token, `{"address":"0x00000000000000000000000000000000000000bb"}`, 409, CodeIdentityLocked)
	if err := e.ids.Unlock(id, "pw"); err != nil {
		t.Fatal(err)
	}
	e.expectError(t, "POST", base+"/register", e.token, `{"beneficiary":"0x12"}`, 400, CodeValidation)
	e.expectError(t, "POST", base+"/register", e.token, `{"fee":"x"}`, 400, CodeValidation)
	var rr RegisterResponse
	if resp := e.do(t, "POST", base+"/register", e.token, "", &rr); resp.StatusCode != 200 {
		t.Fatalf("register: %d", resp.StatusCode)
	}
	if rr.ID != id.Hex() || rr.Channel != wantCh.Hex() || rr.Hermes != e.dep.Hermes.Hex() || rr.TxHash == "" {
		t.Fatalf("register answer %+v", rr)
	}
	a = e.account(t, id)
	if !a.Registered || !a.ChannelDeployed || a.Channel != wantCh.Hex() || a.Beneficiary != id.Hex() || a.ChannelBalance != "1.500000000000000001" {
		t.Fatalf("account after registration: %+v", a)
	}
	// A second registration is a decoded revert.
	eb := e.expectError(t, "POST", base+"/register", e.token, "{}", 409, CodeChainReverted)
	if !strings.Contains(eb.Message, "AlreadyRegistered") {
		t.Fatalf("second register: %+v", eb)
	}

	// Beneficiary change is visible.
	e.expectError(t, "PUT", base+"/beneficiary", e.token, `{"address":"0xzz"}`, 400, CodeValidation)
	e.expectError(t, "PUT", base+"/beneficiary", e.token, `{"address":"0x0000000000000000000000000000000000000000"}`, 400, CodeValidation)
	e.expectError(t, "PUT", base+"/beneficiary", e.token, `{"addr":"0x00000000000000000000000000000000000000bb"}`, 400, CodeBadRequest)
	ben := common.HexToAddress("0x00000000000000000000000000000000000be4e1")
	var br BeneficiaryResponse
	if resp := e.do(t, "PUT", base+"/beneficiary", e.token, `{"address":"`+strings.ToLower(ben.Hex())+`"}`, &br); resp.StatusCode != 200 {
		t.Fatalf("beneficiary: %d", resp.StatusCode)
	}
	if br.Beneficiary != ben.Hex() || e.account(t, id).Beneficiary != ben.Hex() {
		t.Fatalf("beneficiary answer %+v", br)
	}

	// The hermes operator promises this provider 1.5 MYST; the provider
	// settles it to its beneficiary (1% dev hermes fee).
	st := hermesPromise(t, e.dep, id, new(big.Int).Div(money.MYST(3), big.NewInt(2)))
	body := settleBody(t, st)
	var sr AccountSettleResponse
	if resp := e.do(t, "POST", base+"/settle", e.token, body, &sr); resp.StatusCode != 200 {
		t.Fatalf("settle: %d", resp.StatusCode)
	}
	if sr.Kind != chain.KindProvider || sr.Paid != "1.5" || sr.PaidWei != "1500000000000000000" || sr.Settled != "1.5" || sr.Promised != "1.5" || sr.Beneficiary != ben.Hex() {
		t.Fatalf("settle answer %+v", sr)
	}
	a = e.account(t, id)
	if a.BeneficiaryBalance != "1.485" || a.ProviderSettled != "1.5" {
		t.Fatalf("account after settle: %+v", a)
	}
	eb = e.expectError(t, "POST", base+"/settle", e.token, body, 409, CodeChainReverted)
	if !strings.Contains(eb.Message, "NothingToSettle") {
		t.Fatalf("second settle: %+v", eb)
	}
	// A promise for another provider, a broken one, or another chain's.
	other := hermesPromise(t, e.dep, common.HexToAddress("0x00000000000000000000000000000000000000cc"), money.MYST(1))
	if eb := e.expectError(t, "POST", base+"/settle", e.token, settleBody(t, other), 400, CodeValidation); eb.Fields["settlement"] == "" {
		t.Fatalf("other provider: %+v", eb)
	}
	wrongChain := hermesPromise(t, e.dep, id, money.MYST(2))
	wrongChain.ChainID++
	signHermes(t, &wrongChain)
	e.expectError(t, "POST", base+"/settle", e.token, settleBody(t, wrongChain), 400, CodeValidation)
	broken := strings.Replace(settleBody(t, st), `"kind":"provider"`, `"kind":"hermes"`, 1)
	e.expectError(t, "POST", base+"/settle", e.token, broken, 400, CodeValidation)
	e.expectError(t, "POST", base+"/settle", e.token, `{"settlement":"x"}`, 400, CodeValidation)
	e.expectError(t, "POST", base+"/settle", e.token, `{}`, 400, CodeValidation)
}

// hermesPromise is a dev-hermes promise of amount to provider, signed by
// the dev hermes operator.
func hermesPromise(t *testing.T, dep chain.Deployment, provider common.Address, amount *big.Int) chain.Settlement {
	t.Helper()
	var pre [32]byte
	if _, err := rand.Read(pre[:]); err != nil {
		t.Fatal(err)
	}
	st := chain.Settlement{Kind: chain.KindProvider, ChainID: dep.ChainID, Contract: dep.Hermes, Provider: provider, Preimage: pre,
		Promise: payments.Promise{ChainID: new(big.Int).SetUint64(dep.ChainID), ChannelID: payments.ProviderChannelID(provider, dep.Hermes), Amount: amount, Fee: new(big.Int), Hashlock: payments.Hashlock(pre[:])}}
	signHermes(t, &st)
	return st
}

func signHermes(t *testing.T, st *chain.Settlement) {
	t.Helper()
	op := identity.NewKeySigner(devchain.DevKey(devchain.HermesAccount))
	if err := st.Promise.Sign(op); err != nil {
		t.Fatal(err)
	}
}

func settleBody(t *testing.T, st chain.Settlement) string {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return `{"settlement":` + string(b) + `}`
}

// TestAccountRoutesWithoutChain: with no chain the routes answer 503
// chain_unavailable, after validating the request.
func TestAccountRoutesWithoutChain(t *testing.T) {
	e := newEnv(t, nil)
	noChain := ChainSourceFunc(func(context.Context) (AccountChain, common.Address, error) {
		return nil, common.Address{}, fmt.Errorf("no deployment file %s: %w", filepath.Join("x", "deployment.json"), errors.New("file does not exist"))
	})
	e.s.Add(AccountRoutes(e.ids, noChain, nil)...)
	tok := e.login(t)
	base := "/identities/" + e.newIdentity(t).Hex()
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/account", ""}, {"POST", "/register", ""}, {"POST", "/topup", `{"amount":"1"}`},
		{"PUT", "/beneficiary", `{"address":"0x00000000000000000000000000000000000000bb"}`},
	} {
		eb := e.expectError(t, c.method, base+c.path, tok, c.body, 503, CodeChainUnavailable)
		if !strings.Contains(eb.Message, "deployment.json") {
			t.Errorf("%s %s: message %q lacks the reason", c.method, c.path, eb.Message)
		}
	}
	e.expectError(t, "POST", base+"/topup", tok, `{"amount":"-1"}`, 400, CodeValidation)
	e.expectError(t, "GET", "/identities/0x00000000000000000000000000000000000000aa/account", tok, "", 404, CodeNotFound)
}

// TestAccountRoutesDocumented: the routes and their request schemas are in
// /openapi.json.
func TestAccountRoutesDocumented(t *testing.T) {
	e := newEnv(t, nil)
	e.s.Add(AccountRoutes(e.ids, ChainSourceFunc(func(context.Context) (AccountChain, common.Address, error) {
		return nil, common.Address{}, ErrChainUnavailable
	}), nil)...)
	var doc Document
	if resp := e.do(t, "GET", "/openapi.json", "", "", &doc); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	for path, method := range map[string]string{
		"/identities/{id}/account": "get", "/identities/{id}/register": "post", "/identities/{id}/topup": "post",
		"/identities/{id}/settle": "post", "/identities/{id}/beneficiary": "put",
	} {
		op, ok := doc.Paths[path][method]
		if !ok {
			t.Errorf("%s %s not documented", method, path)
			continue
		}
		if _, ok := op.Responses["503"]; !ok {
			t.Errorf("%s %s: 503 not documented", method, path)
		}
		concrete := strings.ReplaceAll(path, "{id}", "0x0000000000000000000000000000000000000001")
		if _, got := e.s.mux.Handler(httptest.NewRequest(strings.ToUpper(method), concrete, nil)); got != strings.ToUpper(method)+" "+path {
			t.Errorf("%s %s routed to %q", method, path, got)
		}
	}
	topup := doc.Paths["/identities/{id}/topup"]["post"].RequestBody.Content["application/json"]["schema"]
	if len(topup.Required) != 1 || topup.Required[0] != "amount" {
		t.Errorf("topup schema %+v", topup)
	}
	acct := doc.Paths["/identities/{id}/account"]["get"].Responses["200"].Content["application/json"]["schema"]
	if acct.Properties["channel_balance_wei"] == nil && acct.Ref == "" {
		t.Errorf("account schema %+v", acct)
	}
	if resp := e.do(t, "GET", "/identities/0x0000000000000000000000000000000000000001/account", "", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
}

// FuzzAccountRequests: the account request decoders never panic, fail
// only with 400s, and what they accept is valid.
func FuzzAccountRequests(f *testing.F) {
	st := chain.Settlement{Kind: chain.KindProvider, ChainID: 1337, Contract: common.HexToAddress("0x01"), Provider: common.HexToAddress("0x02")}
	// A signature of the form the contracts accept (r = s = 1, v = 27); the
	// decoders do not check who signed.
	sig := make([]byte, 65)
	sig[31], sig[63], sig[64] = 1, 1, 27
	st.Promise = payments.Promise{ChainID: big.NewInt(1337), ChannelID: payments.ProviderChannelID(st.Provider, st.Contract), Amount: big.NewInt(5), Fee: big.NewInt(1),
		Hashlock: payments.Hashlock(st.Preimage[:]), Signature: sig}
	good, err := json.Marshal(st)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"amount":"1.5"}`, `{"amount":"1.5","from_transactor":true}`, `{"amount":"-1"}`, `{"amount":"1.2.3"}`,
		`{"amount":"0.0000000000000000001"}`, `{"amount":1}`, `{"address":"0x00000000000000000000000000000000000000bb"}`,
		`{"address":"0x0000000000000000000000000000000000000000"}`, `{}`, `{"beneficiary":"0x00000000000000000000000000000000000000bb","fee":"0.1"}`,
		`{"settlement":` + string(good) + `}`, `{"settlement":{}}`, `{"settlement":null}`, `{"settlement":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check(t, body, &TopupRequest{})
		check(t, body, &BeneficiaryRequest{})
		check(t, body, &RegisterRequest{})
		var sr AccountSettleRequest
		if err := DecodeBytes(body, &sr); err != nil {
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
				t.Fatalf("body %q: error %v is not a 400", body, err)
			}
			return
		}
		s, err := sr.Decode()
		if err != nil {
			t.Fatalf("accepted %q but Decode fails: %v", body, err)
		}
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := chain.DecodeSettlement(again)
		if err != nil {
			t.Fatalf("re-encoded settlement rejected: %v", err)
		}
		if b2, _ := json.Marshal(s2); string(b2) != string(again) {
			t.Fatalf("settlement round trip changed %s to %s", again, b2)
		}
	})
}

// BenchmarkAccountRoutes measures the account routes against the same
// chain work done directly with the chain client in the same run, and
// reports the ratio (http/direct): what Tequilapi (auth, JSON, identity
// lookup) adds on top of the chain round trips.
//
//	go test -run '^$' -bench AccountRoutes ./tequilapi/
func BenchmarkAccountRoutes(b *testing.B) {
	ctx := context.Background()
	dc := devchaintest.Start(ctx, b, devchain.Config{Log: slog.New(slog.DiscardHandler)})
	c := devchaintest.Client(ctx, b, dc, slog.New(slog.DiscardHandler))
	dep := dc.Deployment()
	e := newEnv(b, nil)
	e.s.Add(AccountRoutes(e.ids, ChainSourceFunc(func(context.Context) (AccountChain, common.Address, error) {
		return c, dep.Hermes, nil
	}), slog.New(slog.DiscardHandler))...)
	tok, _, err := e.s.auth.login(Username, e.pw)
	if err != nil {
		b.Fatal(err)
	}
	id, err := e.ids.New(ctx, "pw")
	if err != nil {
		b.Fatal(err)
	}
	hc := e.ts.Client()
	call := func(method, path, body string) {
		req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	base := "/identities/" + id.Address.Hex()
	ch := c.ChannelAddress(id.Address, dep.Hermes)
	for _, bc := range []struct {
		name         string
		direct, http func()
	}{
		{"account",
			func() {
				if _, err := ReadAccount(ctx, c, dep.Hermes, id.Address); err != nil {
					b.Fatal(err)
				}
			},
			func() { call("GET", base+"/account", "") }},
		{"topup",
			func() {
				if _, err := c.Mint(ctx, ch, big.NewInt(1)); err != nil {
					b.Fatal(err)
				}
				if _, err := c.TokenBalance(ctx, ch); err != nil {
					b.Fatal(err)
				}
			},
			func() { call("POST", base+"/topup", `{"amount":"0.000000000000000001"}`) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var direct, viaHTTP time.Duration
			for b.Loop() {
				t0 := time.Now()
				bc.direct()
				t1 := time.Now()
				bc.http()
				viaHTTP += time.Since(t1)
				direct += t1.Sub(t0)
			}
			b.ReportMetric(float64(direct.Microseconds())/float64(b.N), "direct-µs/op")
			b.ReportMetric(float64(viaHTTP.Microseconds())/float64(b.N), "http-µs/op")
			b.ReportMetric(float64(viaHTTP)/float64(direct), "http/direct")
		})
	}
}

// TestAccountConsumerSettleReadOnlyAndConcurrentTopups: a consumer promise
// on the identity's own channel settles to the hermes; concurrent top-ups
// all land; a read-only chain serves the account but refuses writes.
func TestAccountConsumerSettleReadOnlyAndConcurrentTopups(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev chain")
	}
	dc := startDevChain(t)
	e := newAccountEnv(t, dc)
	id := e.newIdentity(t)
	base := "/identities/" + id.Hex()

	// Concurrent top-ups (the transactor orders its nonces).
	const n = 4
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.ts.URL+base+"/topup", strings.NewReader(`{"amount":"0.25"}`))
			req.Header.Set("Authorization", "Bearer "+e.token)
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("concurrent topup status %d", c)
		}
	}
	if a := e.account(t, id); a.ChannelBalance != "1" {
		t.Fatalf("after %d concurrent top-ups of 0.25: %s", n, a.ChannelBalance)
	}
	if resp := e.do(t, "POST", base+"/register", e.token, `{"fee":"0.1"}`, nil); resp.StatusCode != 200 {
		t.Fatalf("register with fee: %d", resp.StatusCode)
	}
	if a := e.account(t, id); a.ChannelBalance != "0.9" {
		t.Fatalf("after a 0.1 registration fee: %s", a.ChannelBalance)
	}

	// The consumer promises its hermes 0.4 MYST; settled through the route.
	sg, err := e.ids.Signer(id)
	if err != nil {
		t.Fatal(err)
	}
	var pre [32]byte
	if _, err := rand.Read(pre[:]); err != nil {
		t.Fatal(err)
	}
	ch := e.client.ChannelAddress(id, e.dep.Hermes)
	st := chain.Settlement{Kind: chain.KindConsumer, ChainID: e.dep.ChainID, Contract: ch, Preimage: pre,
		Promise: payments.Promise{ChainID: e.client.ChainID(), ChannelID: payments.ConsumerChannelID(ch), Amount: money.MYST(4), Fee: new(big.Int), Hashlock: payments.Hashlock(pre[:])}}
	st.Promise.Amount.Div(st.Promise.Amount, big.NewInt(10))
	if err := st.Promise.Sign(sg); err != nil {
		t.Fatal(err)
	}
	var sr AccountSettleResponse
	if resp := e.do(t, "POST", base+"/settle", e.token, settleBody(t, st), &sr); resp.StatusCode != 200 {
		t.Fatalf("consumer settle: %d", resp.StatusCode)
	}
	if sr.Kind != chain.KindConsumer || sr.Paid != "0.4" || sr.Settled != "0.4" || sr.Beneficiary != "" {
		t.Fatalf("consumer settle answer %+v", sr)
	}
	if a := e.account(t, id); a.ChannelBalance != "0.5" || a.Settled != "0.4" {
		t.Fatalf("account after consumer settle: %+v", a)
	}
	// Someone else's channel is not this identity's to settle here.
	other := e.newIdentity(t)
	if eb := e.expectError(t, "POST", "/identities/"+other.Hex()+"/settle", e.token, settleBody(t, st), 400, CodeValidation); eb.Fields["settlement"] == "" {
		t.Fatalf("settle on another identity: %+v", eb)
	}

	// Read-only: the account reads, writes answer 503.
	ro, err := chain.NewClient(context.Background(), e.client.Backend(), e.dep, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newEnv(t, nil)
	r.s.Add(AccountRoutes(r.ids, ChainSourceFunc(func(context.Context) (AccountChain, common.Address, error) {
		return ro, e.dep.Hermes, nil
	}), nil)...)
	rtok := r.login(t)
	rid, err := r.ids.New(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	var a AccountDTO
	if resp := r.do(t, "GET", "/identities/"+rid.Address.Hex()+"/account", rtok, "", &a); resp.StatusCode != 200 || a.Registered {
		t.Fatalf("read-only account: %d %+v", resp.StatusCode, a)
	}
	if eb := r.expectError(t, "POST", "/identities/"+rid.Address.Hex()+"/topup", rtok, `{"amount":"1"}`, 503, CodeChainUnavailable); !strings.Contains(eb.Message, "transactor") {
		t.Fatalf("read-only topup: %+v", eb)
	}
}
