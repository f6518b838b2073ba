package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/natlab"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// natLabKinds are the NAT kinds of TestNATLabPaidSession, one provider
// and one consumer behind each, in the order its schedule rotates them.
var natLabKinds = []natlab.Kind{natlab.Public, natlab.EndpointIndependent, natlab.Symmetric, natlab.UDPBlocked,
	natlab.Forwarded, natlab.UPnP, natlab.DoubleNAT}

const (
	// natLabIdentitiesEnv tells the hub child how many provider and
	// consumer identities (natLabKey) to register and fund.
	natLabIdentitiesEnv = "MYST_NATLAB_IDENTITIES"
	// natLabHubLife bounds the hub child of TestNATLabPaidSession.
	natLabHubLife = 10 * time.Minute
	// natLabCountry is every lab provider's country.
	natLabCountry = "DE"
	// natLabDelayEnv, a duration such as "20ms", adds that one-way delay
	// to every internet link of the lab (natlab.Lab.SetDelay): the
	// summary's connect times then measure the method.
	natLabDelayEnv = "MYST_NATLAB_DELAY"
	// natLabQuiet is how long a node's hermes total must stay unchanged
	// before a pair starts with it: no exchange of its previous session
	// is still on its way.
	natLabQuiet = time.Second
)

// natLabKey is the test key of lab identity i of role ("provider" or
// "consumer"): the test and the hub child derive the same keys, so the
// hub registers and funds them before the nodes start.
func natLabKey(role string, i int) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("openmyst natlab " + role + " " + strconv.Itoa(i))))
	if err != nil {
		panic(err) // cannot happen for these seeds
	}
	return k
}

// natLabExpectedPath is the session path between a consumer behind cons
// and a provider behind prov. UDP blocked on either side leaves only TURN
// over TCP. Two sides that are not symmetric punch through. A symmetric
// side reaches a public one, a provider whose ICE port is forwarded
// (by hand, or mapped on the UPnP router) and the UPnP consumer, which
// maps its ICE port with --portmap: their candidates take checks from
// anywhere. A symmetric side and an endpoint-independent one (a
// port-restricted cone: masquerade, double NAT, a forwarded consumer,
// whose ICE port is not forwarded) are punched by nat/punch's birthday
// technique (docs/reachability.md, "Birthday punching"). Only two
// symmetric sides need the relay.
func natLabExpectedPath(cons, prov natlab.Kind) string {
	if cons == natlab.UDPBlocked || prov == natlab.UDPBlocked {
		return "relay"
	}
	if cons == natlab.Symmetric && prov == natlab.Symmetric {
		return "relay"
	}
	return "direct"
}

// natLabSTUNAlt is the alternate STUN port of the hub's relay: with its
// UDP port, two destinations that tell a node's endpoint-dependent
// mapping from an endpoint-independent one.
const natLabSTUNAlt = 3479

// natLabEndpoint is the start of the WireGuard endpoint line `myst
// service` prints behind kind (site address wan), which finds it itself
// except behind the forwarded router.
func natLabEndpoint(kind natlab.Kind, wan netip.Addr) string {
	ep := fmt.Sprintf("%s:51820", wan)
	switch kind {
	case natlab.Public:
		return ep + " (stun, none)"
	case natlab.EndpointIndependent, natlab.DoubleNAT:
		return ep + " (stun, endpoint-independent)"
	case natlab.Symmetric:
		return "none static (endpoint-dependent: ICE only; sessions name " + ep
	case natlab.UDPBlocked:
		return "none static (udp-blocked: ICE only"
	case natlab.UPnP:
		return ep + " (portmap)"
	}
	return ep + " (configured)"
}

// natLabNode is one provider or consumer of the lab.
type natLabNode struct {
	kind natlab.Kind
	addr string // identity, 0x-hex
	dd   string // data directory
	site *natlab.Site
	proc *netns.Proc // myst service or myst daemon
	argv []string    // proc's command line (after "env"), to restart it
}

// natLabResult is what one pair measured.
type natLabResult struct {
	cons, prov natlab.Kind
	path       string
	start      time.Duration // since the first pair started
	connect    time.Duration // first myst connect → connected (retries included)
	total      time.Duration // connect, fetch and payment
}

// TestNATLabPaidSession runs the product's processes in the NAT lab: on
// the lab's internet a hub (devnet chain and hermes proxied onto its
// public address, a libp2p bootstrap with the relay role carrying the
// proposals' topic, a STUN/TURN relay on UDP and TCP) and a web server;
// behind every NAT kind of natLabKinds one `myst service` and one `myst
// daemon`, each started once. Every consumer connects (`myst connect
// PROVIDER`) to every provider, one pair after another: all 49 pairs of
// the 7 x 7 matrix. Pairs run at once as long as they share no node
// (natLabSchedule; up to seven at a time), so a consumer uses one
// provider and a provider serves one consumer at a time. Each pair must
// come up on the path natLabExpectedPath names, fetch the web server's
// body through the consumer's SOCKS5 proxy, and pay: the hermes's
// promised total of the consumer and earnings of the provider both rise
// during the pair's session (each pair starts once both totals have been
// quiet for natLabQuiet). The UPnP provider maps its ports with
// --portmap and advertises the mapped address; the mappings are gone
// once it stops.
func TestNATLabPaidSession(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet, myst services and myst daemons in the NAT lab")
	}
	testenv.RequireNetns(t)
	testenv.RequireTools(t, "nft")
	start := time.Now()
	lab := natlab.New(t)
	if v := os.Getenv(natLabDelayEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s: %v", natLabDelayEnv, err)
		}
		if err := lab.SetDelay(d); err != nil {
			t.Fatal(err)
		}
	}
	hubHost := lab.PublicHost("hub")
	webHost := lab.PublicHost("web")
	body := []byte(strings.Repeat("openmyst through two NATs ", 10000))
	web := webHost.NS.Listen("tcp", webHost.Addr.String()+":80")
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(web) }()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), natLabHubLife-30*time.Second)
	defer cancel()
	dir := t.TempDir()
	pf := passFile(t, "natlab-e2e")
	ks := keystore.NewKeyStore(filepath.Join(dir, "ks"), keystore.LightScryptN, keystore.LightScryptP)
	n := len(natLabKinds)
	provs, conss := make([]*natLabNode, n), make([]*natLabNode, n)
	for i, k := range natLabKinds {
		provs[i], conss[i] = natLabImport(t, ks, pf, "provider", i, k), natLabImport(t, ks, pf, "consumer", i, k)
	}

	_, st, ice := startNATLabHub(ctx, t, hubHost, dir, n)
	t.Logf("hub ready after %s", time.Since(start).Round(100*time.Millisecond))
	mainEnv := mystArgv

	// The sites, one per node. A forwarded router forwards the WireGuard
	// port and the ICE port after it (not libp2p's: see "Known limits" in
	// docs/reachability.md); a UPnP router runs miniupnpd (the provider
	// maps its ports with --portmap, libp2p its own, the consumer its ICE
	// port while connected).
	for i, k := range natLabKinds {
		for _, nd := range []struct {
			role string
			n    *natLabNode
		}{{"p", provs[i]}, {"c", conss[i]}} {
			nd.n.site = lab.Site(fmt.Sprintf("%s%d", nd.role, i), k, natlab.WithForward(51820, 51821))
			if k == natlab.UPnP {
				nd.n.site.StartUPnP(t)
			}
		}
	}
	for _, p := range provs {
		p.proc = p.site.Host.NS.Start("env", mainEnv(append(natLabServiceArgs(p, st, pf), ice...)...)...)
	}
	for _, c := range conss {
		args := natLabDaemonArgs(c, st, pf)
		if c.kind == natlab.UPnP {
			// The consumer maps its ICE port while connected.
			args = append(args, "--portmap")
		}
		c.proc = c.site.Host.NS.Start("env", mainEnv(append(args, ice...)...)...)
	}
	for _, p := range provs {
		waitOutput(ctx, t, p.proc, "serving", "myst service behind "+p.kind.String())
		// The endpoint each provider advertises, found without
		// --wg.advertise: the mapping, STUN's view where the mapping is
		// endpoint-independent, none where no static endpoint works.
		waitOutput(ctx, t, p.proc, "wireguard endpoint: ", "myst service behind "+p.kind.String())
		if want := natLabEndpoint(p.kind, p.site.WAN); !strings.Contains(p.proc.Output(), "wireguard endpoint: "+want) {
			t.Errorf("myst service behind %s: want %q in\n%s", p.kind, "wireguard endpoint: "+want, p.proc.Output())
		}
		if p.kind == natlab.UPnP {
			// The mapped WireGuard port is the advertised endpoint.
			if want := fmt.Sprintf("wireguard %s:51820", p.site.WAN); !strings.Contains(p.proc.Output(), want) {
				t.Fatalf("the UPnP provider does not advertise its mapped port (%q):\n%s", want, p.proc.Output())
			}
		}
	}
	for _, c := range conss {
		waitOutput(ctx, t, c.proc, "node started", "myst daemon behind "+c.kind.String())
	}
	t.Logf("%d services and %d daemons up after %s", n, n, time.Since(start).Round(100*time.Millisecond))

	hc := &natLabHermes{url: st.HermesLink, client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: hubHost.NS.Dialer(3 * time.Second), DisableKeepAlives: true}}}
	var mu sync.Mutex
	var results []natLabResult
	pairsStart := time.Now()
	natLabSchedule(ctx, t, n, func(t *testing.T, ci, pi int) {
		c, p := conss[ci], provs[pi]
		before := hc.quiet(ctx, t, c, p)
		res := runNATLabPair(ctx, t, c, p, before, hc, webHost, body, mainEnv)
		res.start = time.Since(pairsStart) - res.total
		mu.Lock()
		results = append(results, res)
		mu.Unlock()
	})
	pairsTook := time.Since(pairsStart)
	if t.Failed() {
		return
	}

	// The UPnP consumer's ICE port was mapped while connected (its pairs
	// are direct even to the symmetric provider) and is no longer after
	// its disconnects.
	for _, c := range conss {
		if c.kind != natlab.UPnP {
			continue
		}
		r, _ := c.site.Router.Run(ctx, "nft", "list", "table", "inet", "miniupnpd")
		if strings.Contains(r, strconv.Itoa(node.DefaultConsumerICEPort)) {
			t.Fatalf("the consumer's ICE port mapping outlived its connections:\n%s\n--- daemon:\n%s", r, c.proc.Output())
		}
		if !strings.Contains(c.proc.Output(), "consumer ICE port mapped") {
			t.Fatalf("the UPnP consumer never mapped its ICE port:\n%s", c.proc.Output())
		}
	}

	// Shutdown removes the UPnP provider's mappings from the router.
	for _, p := range provs {
		if p.kind != natlab.UPnP {
			continue
		}
		rules := func() string {
			out, _ := p.site.Router.Run(ctx, "nft", "list", "table", "inet", "miniupnpd")
			return out
		}
		if r := rules(); !strings.Contains(r, "51820") || !strings.Contains(r, "51821") {
			t.Fatalf("miniupnpd has no mapping of the WireGuard and ICE ports:\n%s", r)
		}
		if err := p.proc.Signal(syscall.SIGTERM, 20*time.Second); err != nil {
			t.Fatalf("myst service did not stop: %v\n%s", err, p.proc.Output())
		}
		if r := rules(); strings.Contains(r, "51820") || strings.Contains(r, "51821") {
			t.Fatalf("the mappings outlived the provider:\n%s\n--- service:\n%s", r, p.proc.Output())
		}
	}

	sort.Slice(results, func(i, j int) bool {
		if results[i].cons != results[j].cons {
			return results[i].cons < results[j].cons
		}
		return results[i].prov < results[j].prov
	})
	var sb strings.Builder
	var base time.Duration // the public pair's connect
	for _, r := range results {
		if r.cons == natlab.Public && r.prov == natlab.Public {
			base = r.connect
		}
	}
	for _, r := range results {
		fmt.Fprintf(&sb, "  %-10s consumer x %-10s provider: %-6s at %5.1fs, connect %5.1fs (%5.1fx the public pair), pair %5.1fs\n",
			r.cons, r.prov, r.path, r.start.Seconds(), r.connect.Seconds(), float64(r.connect)/float64(max(base, time.Millisecond)), r.total.Seconds())
	}
	t.Logf("%d pairs in %s, whole test %s:\n%s", len(results), pairsTook.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond), sb.String())
}

// natLabSchedule runs every consumer x provider pair of n consumers and n
// providers, each as subtest "<consumer kind>-consumer/<provider
// kind>-provider" calling run, and returns when all have ended. A pair
// starts as soon as neither its consumer nor its provider is in another
// pair. Among the pairs that can start, the one whose nodes have the
// most work left goes first (a relayed pair takes about three times as
// long as a direct one: ICE waits for its STUN and relay candidates), so
// the UDP-blocked nodes, seven relayed pairs each, are never idle; ties
// go to the public provider (the others are reachable only once AutoNAT
// has found them private), then in the order of the rotation "consumer i with provider i+r" for
// r = 1..n-1 and then r = 0 (every kind with itself). The subtests run on
// goroutines of their own, not t.Parallel: -test.parallel (GOMAXPROCS, 2
// on CI) would otherwise hold back pairs whose nodes are idle.
func natLabSchedule(ctx context.Context, t *testing.T, n int, run func(t *testing.T, ci, pi int)) {
	type pair struct{ c, p, cost int }
	var pending []pair
	cLeft, pLeft := make([]int, n), make([]int, n)
	for k := 1; k <= n; k++ {
		r := k % n
		for i := range n {
			pr := pair{c: i, p: (i + r) % n, cost: 1}
			if natLabExpectedPath(natLabKinds[pr.c], natLabKinds[pr.p]) == "relay" {
				pr.cost = 3
			}
			cLeft[pr.c] += pr.cost
			pLeft[pr.p] += pr.cost
			pending = append(pending, pr)
		}
	}
	cBusy, pBusy := make([]bool, n), make([]bool, n)
	done := make(chan pair)
	running := 0
	for len(pending) > 0 || running > 0 {
		sort.SliceStable(pending, func(i, j int) bool {
			a, b := pending[i], pending[j]
			if wa, wb := max(cLeft[a.c], pLeft[a.p]), max(cLeft[b.c], pLeft[b.p]); wa != wb {
				return wa > wb
			}
			// The public provider is reachable at once; the others
			// once AutoNAT has found them private (~15 s after start).
			return natLabKinds[a.p] == natlab.Public && natLabKinds[b.p] != natlab.Public
		})
		rest := pending[:0]
		for _, pr := range pending {
			if cBusy[pr.c] || pBusy[pr.p] {
				rest = append(rest, pr)
				continue
			}
			cBusy[pr.c], pBusy[pr.p] = true, true
			cLeft[pr.c] -= pr.cost
			pLeft[pr.p] -= pr.cost
			running++
			go func() {
				defer func() { done <- pr }()
				t.Run(fmt.Sprintf("%s-consumer/%s-provider", natLabKinds[pr.c], natLabKinds[pr.p]), func(t *testing.T) { run(t, pr.c, pr.p) })
			}()
		}
		pending = rest
		select {
		case pr := <-done:
			running--
			cBusy[pr.c], pBusy[pr.p] = false, false
		case <-ctx.Done():
			// Each pair is bounded by ctx too: wait for them to end.
			for ; running > 0; running-- {
				<-done
			}
			t.Fatalf("NAT lab pairs not done: %v", ctx.Err())
		}
	}
}

// runNATLabPair connects consumer c to provider p, checks the path,
// fetches body from web through c's SOCKS5 proxy and waits for the
// hermes's totals of both to rise above before; it disconnects at the
// end.
func runNATLabPair(ctx context.Context, t *testing.T, c, p *natLabNode, before map[string]*natLabTotals, hc *natLabHermes, webHost *natlab.Host, body []byte, mainEnv func(...string) []string) natLabResult {
	t.Helper()
	pairStart := time.Now()
	wantPath := natLabExpectedPath(c.kind, p.kind)
	dump := func() string {
		return fmt.Sprintf("--- daemon (%s):\n%s\n--- service (%s):\n%s", c.kind, tail(c.proc.Output(), 60), p.kind, tail(p.proc.Output(), 60))
	}
	const socks = "127.0.0.1:1080"
	// Until AutoNAT has found a provider behind a NAT private (15 s after
	// its start) its proposal lists no address a consumer elsewhere can
	// dial: those attempts fail, and the pair tries again.
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out, first string
	for {
		cp := c.site.Host.NS.Start("env", mainEnv("--data-dir", c.dd, "--tequilapi.port", "4050", "connect", p.addr, "--proxy", socks)...)
		<-cp.Exited()
		out = cp.Output()
		if first == "" {
			first = out
		}
		if strings.Contains(out, "connected to") {
			break
		}
		select {
		case <-pctx.Done():
			t.Fatalf("myst connect never connected; first output:\n%s\nlast output:\n%s\n%s", first, out, dump())
		case <-time.After(time.Second):
		}
	}
	res := natLabResult{cons: c.kind, prov: p.kind, connect: time.Since(pairStart)}
	defer func() {
		d := c.site.Host.NS.Start("env", mainEnv("--data-dir", c.dd, "--tequilapi.port", "4050", "disconnect")...)
		<-d.Exited()
		if !strings.Contains(d.Output(), "disconnected") {
			t.Errorf("myst disconnect: %s", d.Output())
		}
	}()
	for _, k := range []string{"direct", "relay"} {
		if strings.Contains(out, "over the "+k+" path") {
			res.path = k
		}
	}
	if res.path != wantPath {
		t.Errorf("myst connect: %q, want the %s path\n%s", strings.TrimSpace(out), wantPath, dump())
	}
	// What the node runner sees (issue 12): a provider behind a symmetric
	// NAT, which consumers reach only through its circuit relay, says so.
	// (Its proposal lists the circuit a second after the reservation that
	// also changed the line.)
	if p.kind == natlab.Symmetric && !strings.Contains(p.proc.Output(), "nat: relay-only (AutoNAT: private") {
		t.Errorf("myst service behind a symmetric NAT never printed that it is reachable through its relay only\n%s", dump())
	}
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "socks5", Host: socks}), DialContext: c.site.Host.NS.Dialer(3 * time.Second), DisableKeepAlives: true}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("http://" + webHost.Addr.String() + "/")
	if err != nil {
		t.Fatalf("GET through the consumer's SOCKS5 proxy: %v\n--- connect:\n%s\n%s", err, out, dump())
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != string(body) {
		t.Fatalf("fetched %d bytes (%v), want the %d-byte body\n%s", len(got), err, len(body), dump())
	}
	// Paid: the hermes accepted the consumer's promises for this
	// provider (the only one it uses in this round, and the provider's
	// only consumer).
	for {
		now, err := hc.totals(ctx, c.addr, p.addr)
		if err == nil && now.promised > before[c.addr].promised && now.earned > before[p.addr].earned {
			break
		}
		select {
		case <-pctx.Done():
			t.Fatalf("no payment at the hermes (before: consumer %d, provider %d; now %+v, %v)\n%s",
				before[c.addr].promised, before[p.addr].earned, now, err, dump())
		case <-time.After(200 * time.Millisecond):
		}
	}
	res.total = time.Since(pairStart)
	t.Logf("%s consumer x %s provider: path %s, connected in %s, paid in %s", c.kind, p.kind, res.path,
		res.connect.Round(100*time.Millisecond), res.total.Round(100*time.Millisecond))
	return res
}

// natLabTotals are a node's totals at the hermes: what a consumer
// promised, what a provider earned (wei).
type natLabTotals struct{ promised, earned uint64 }

// natLabHermes reads the hub's hermes from the lab's internet.
type natLabHermes struct {
	url    string
	client *http.Client
}

// get reads one field of GET path (0 for an identity the hermes does not
// know yet).
func (h *natLabHermes) get(ctx context.Context, path, field string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0, nil
	}
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("hermes %s: status %d: %v", path, resp.StatusCode, err)
	}
	s, _ := v[field].(string)
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// totals reads a consumer's promised and a provider's earned totals.
func (h *natLabHermes) totals(ctx context.Context, consumer, provider string) (natLabTotals, error) {
	var t natLabTotals
	var err error
	if consumer != "" {
		if t.promised, err = h.get(ctx, "/v1/consumers/"+strings.ToLower(consumer), "promised"); err != nil {
			return t, err
		}
	}
	if provider != "" {
		t.earned, err = h.get(ctx, "/v1/providers/"+strings.ToLower(provider), "earned")
	}
	return t, err
}

// quiet returns the totals of consumer c and provider p once neither
// has changed for natLabQuiet: no exchange of an ended session of
// either is still on its way.
func (h *natLabHermes) quiet(ctx context.Context, t *testing.T, c, p *natLabNode) map[string]*natLabTotals {
	t.Helper()
	const poll = 200 * time.Millisecond
	var prev natLabTotals
	var lastErr error // the last read that failed, if any
	known := false    // prev holds a read
	stable := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cur, err := h.totals(ctx, c.addr, p.addr)
		switch {
		case err != nil:
			// A read the loaded hub answers late (the client's timeout)
			// says nothing about the totals: they count as not settled
			// yet, and the deadline bounds the wait.
			lastErr, known = err, false
		case !known || cur != prev:
			prev, stable, known = cur, time.Now(), true
		case time.Since(stable) >= natLabQuiet:
			return map[string]*natLabTotals{c.addr: {promised: cur.promised}, p.addr: {earned: cur.earned}}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hermes totals of %s consumer and %s provider did not settle (last failed read: %v)", c.kind, p.kind, lastErr)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("hermes totals: %v", ctx.Err())
		case <-time.After(poll):
		}
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHubState waits for the hub child's state.json.
func waitHubState(ctx context.Context, t *testing.T, hub interface {
	Output() string
	Exited() <-chan struct{}
}, dir string) tunHubState {
	t.Helper()
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "state.json")); err == nil {
			var st tunHubState
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatal(err)
			}
			return st
		}
		select {
		case <-hub.Exited():
			t.Fatalf("hub exited:\n%s", hub.Output())
		case <-ctx.Done():
			t.Fatalf("hub not ready:\n%s", hub.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startLabHubRelays starts, in the hub child, a libp2p bootstrap with the
// relay role on link:4001 (bootstrapped from the devnet's) and a STUN/TURN
// relay on link:3478 (UDP and TCP; STUN also on UDP natLabSTUNAlt), registers and funds the lab's
// identities (natLabIdentitiesEnv), and returns the bootstrap's
// multiaddr.
func startLabHubRelays(ctx context.Context, t *testing.T, d *node.Devnet, dir, link string) string {
	boot, err := p2p.New(p2p.Config{ListenAddrs: []string{"/ip4/" + link + "/tcp/4001"}, Bootstrap: []peer.AddrInfo{d.Boot.AddrInfo()},
		DHTMode: p2p.DHTServer, RelayService: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = boot.Close() })
	// The bootstrap carries the proposals' GossipSub topic, as a
	// `myst daemon --p2p.bootstrapper` does: nodes behind NATs that cannot
	// dial each other still hear each other's proposals through it.
	disc, err := discovery.New(boot.Host, discovery.Config{ValidatorConfig: discovery.ValidatorConfig{ChainID: d.Chain.Deployment().ChainID},
		Bootstrapper: true, HeartbeatInterval: 200 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = disc.Close() })
	// One relay, as a network with a single relay node runs it: its
	// alternate STUN port is the second STUN destination whose answers
	// against the first tell the mapping behaviour.
	r, err := node.StartRelay(node.RelayConfig{DataDir: filepath.Join(dir, "relay"), UDP: link + ":3478", TCP: link + ":3478",
		STUNAlt: fmt.Sprintf("%s:%d", link, natLabSTUNAlt), PublicIP: netip.MustParseAddr(link), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	// The lab's nodes start at once: registering them here, one after
	// another, keeps their transactions from racing for the transactor
	// key's nonces.
	count, _ := strconv.Atoi(os.Getenv(natLabIdentitiesEnv))
	hermes := d.Chain.Deployment().Hermes
	for i := range count {
		for _, role := range []string{"provider", "consumer"} {
			s := identity.NewKeySigner(natLabKey(role, i))
			if role == "consumer" {
				if _, err := d.Client.Mint(ctx, d.Client.ChannelAddress(s.Address(), hermes), money.MYST(10)); err != nil {
					t.Fatal(err)
				}
			}
			if err := node.EnsureRegisteredFee(ctx, d.Client, s, hermes, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	return fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", link, boot.AddrInfo().ID)
}

// natLabImport imports lab identity i of role (natLabKey, through the
// keystore ks) into a fresh data directory with the passphrase file pf
// and makes it the default identity there.
func natLabImport(t *testing.T, ks *keystore.KeyStore, pf, role string, i int, kind natlab.Kind) *natLabNode {
	t.Helper()
	acct, err := ks.ImportECDSA(natLabKey(role, i), "natlab-e2e")
	if err != nil {
		t.Fatal(err)
	}
	nd := &natLabNode{kind: kind, addr: acct.Address.Hex(), dd: t.TempDir()}
	if _, err := runCLI(t, nd.dd, "identity", "import", acct.URL.Path, "--passphrase-file", pf); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, nd.dd, "identity", "set-default", nd.addr); err != nil {
		t.Fatal(err)
	}
	return nd
}

// startNATLabHub starts the lab's hub child on hubHost (devnet chain and
// hermes proxied onto its address, the relay-role bootstrap, STUN/TURN
// with an alternate STUN port; n identities of each role registered and
// funded) and returns it, its state and the --ice.server flags of the
// lab's nodes (TURN credentials in dir).
func startNATLabHub(ctx context.Context, t *testing.T, hubHost *natlab.Host, dir string, n int) (*netns.Proc, tunHubState, []string) {
	t.Helper()
	hub := hubHost.NS.Start("env", tunRoleEnv+"=hub", tunDirEnv+"="+dir, tunProviderEnv+"=", natLabIdentitiesEnv+"="+strconv.Itoa(n),
		tunLinkEnv+"="+hubHost.Addr.String(), tunLabEnv+"=1",
		os.Args[0], "-test.run=^TestConnectTunEndToEnd$", "-test.count=1", "-test.v", "-test.timeout="+(natLabHubLife+time.Minute).String())
	st := waitHubState(ctx, t, hub, dir)
	user, pass, err := node.RelayCredentials(filepath.Join(dir, "relay"), "lab", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, "turn-credentials")
	if err := os.WriteFile(creds, []byte(user+":"+pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// One relay: STUN on its UDP port and its alternate STUN port (the
	// two destinations that tell a node's mapping: a symmetric or
	// endpoint-independent node punches, nat/punch), TURN over UDP and TCP.
	ice := []string{"--ice.server", fmt.Sprintf("stun:%s:3478", hubHost.Addr),
		"--ice.server", fmt.Sprintf("stun:%s:%d", hubHost.Addr, natLabSTUNAlt),
		"--ice.server", fmt.Sprintf("turn:%s:3478?transport=udp", hubHost.Addr),
		"--ice.server", fmt.Sprintf("turn:%s:3478?transport=tcp", hubHost.Addr),
		"--ice.turn-credentials-file", creds}
	return hub, st, ice
}

// natLabServiceArgs are the `myst service` arguments of lab provider p
// (without the hub's --ice.server flags). Without --wg.advertise the
// provider finds its endpoint (its STUN servers are off this machine,
// node.DefaultAdvertise); a forwarded router's owner names the address,
// a UPnP router maps it (--portmap).
func natLabServiceArgs(p *natLabNode, st tunHubState, pf string) []string {
	args := []string{"--data-dir", p.dd, "--keystore.light-scrypt", "service", "--passphrase-file", pf,
		"--chain.rpc", st.ChainProxyURL, "--chain.deployment", st.Deployment, "--hermes.url", st.HermesLink, "--hermes.insecure-http",
		"--p2p.bootstrap", st.RelayBootstrap, "--p2p.listen", "/ip4/0.0.0.0/tcp/4001", "--wg.port", "51820",
		"--location.country", natLabCountry, "--price.per-hour", "0.1", "--price.per-gib", "0.5",
		"--payment.interval", "1s", "--service.api=false"}
	switch p.kind {
	case natlab.Forwarded:
		// The owner who forwarded the ports knows the address.
		args = append(args, "--wg.advertise", p.site.WAN.String())
	case natlab.UPnP:
		// The mapping gives the advertised address.
		args = append(args, "--portmap")
	}
	return args
}

// natLabDaemonArgs are the `myst daemon` arguments of lab consumer c
// (without --ice.server flags and --portmap).
func natLabDaemonArgs(c *natLabNode, st tunHubState, pf string) []string {
	return []string{"--data-dir", c.dd, "--tequilapi.port", "4050", "--keystore.light-scrypt", "daemon",
		"--p2p.listen", "/ip4/0.0.0.0/tcp/4001", "--p2p.bootstrap", st.RelayBootstrap,
		"--consumer.passphrase-file", pf, "--chain.rpc", st.ChainProxyURL, "--chain.deployment", st.Deployment}
}
