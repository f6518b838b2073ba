package node

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/session/pingpong"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
	"github.com/openmyst/openmyst/session/provider"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/webui"
)

// Event pump periods: how often the daemon samples sessions and the
// connection (cheap, local) and earnings (a hermes and a chain read).
const (
	eventPoll    = time.Second
	earningsPoll = 5 * time.Second
)

// errNoProvider answers the provider routes of a daemon without one.
var errNoProvider = tequilapi.NewError(http.StatusNotFound, tequilapi.CodeNotFound, "this daemon serves no provider (start it with --provider.serve)")

// running returns the running provider, or an API error.
func (s *ProviderService) running() (*Provider, error) {
	if s == nil || !s.Serving() {
		return nil, errNoProvider
	}
	p := s.Provider()
	if p == nil {
		return nil, s.starting()
	}
	return p, nil
}

// LiveSessions implements tequilapi.ProviderSessionService.
func (s *ProviderService) LiveSessions(context.Context) ([]tequilapi.ProviderSessionDTO, error) {
	p, err := s.running()
	if err != nil {
		return nil, err
	}
	return liveSessions(p, time.Now()), nil
}

// ProviderStatus implements tequilapi.ProviderStatusService.
func (s *ProviderService) ProviderStatus(context.Context) (tequilapi.ProviderStatusDTO, error) {
	p, err := s.running()
	if err != nil {
		return tequilapi.ProviderStatusDTO{}, err
	}
	p.priceMu.Lock()
	offer := p.offer
	p.priceMu.Unlock()
	mode := p.cfg.ExitMode
	if mode == "" {
		mode = tunnel.ModeUserspace
	}
	return tequilapi.ProviderStatusDTO{
		Identity: p.Address().Hex(), PeerID: p.P2P.ID().String(), ExitMode: string(mode), WireGuard: p.Exit.Endpoint().String(),
		WireGuardSource: p.AdvertisedEndpoint().Source,
		Location:        offer.Location, Price: offer.Price, Access: offer.Access,
	}, nil
}

// SetPrice implements tequilapi.PriceService.
func (s *ProviderService) SetPrice(_ context.Context, price market.Price) (market.Price, error) {
	p, err := s.running()
	if err != nil {
		return market.Price{}, err
	}
	return p.SetPrice(price).Price, nil
}

// providerHistory serves GET /provider/history from the provider's
// session history.
type providerHistory struct{ s *ProviderService }

// Sessions implements tequilapi.SessionService.
func (h providerHistory) Sessions(ctx context.Context) ([]tequilapi.SessionDTO, error) {
	p, err := h.s.running()
	if err != nil {
		return nil, err
	}
	return HistoryAPI{History: func() *session.History { return p.History }}.Sessions(ctx)
}

func liveSessions(p *Provider, now time.Time) []tequilapi.ProviderSessionDTO {
	ss := p.Sessions.Sessions()
	sort.Slice(ss, func(i, j int) bool { return ss[i].Start.Before(ss[j].Start) })
	out := make([]tequilapi.ProviderSessionDTO, 0, len(ss))
	for _, s := range ss {
		out = append(out, sessionDTO(s, now))
	}
	return out
}

func sessionDTO(s provider.Status, now time.Time) tequilapi.ProviderSessionDTO {
	return tequilapi.ProviderSessionDTO{
		ID: s.ID, Consumer: s.Consumer.Hex(), Start: s.Start.UTC().Format(time.RFC3339),
		DurationSeconds: now.Sub(s.Start).Seconds(), Bytes: s.Bytes, Invoices: s.Tracker.Invoices,
		Invoiced: bigString(s.Tracker.Invoiced), Earned: bigString(s.Tracker.Accepted),
	}
}

func bigString(v *big.Int) string {
	if v == nil {
		return "0"
	}
	return v.String()
}

// settlePreview fills e's fee estimate for settling now: the hermes fee
// (its on-chain fee on what is paid out, as the contract computes it) and
// the transactor fee of the latest hermes promise.
func (p *Provider) settlePreview(ctx context.Context, e *tequilapi.EarningsDTO) error {
	st, err := p.cfg.Chain.HermesState(ctx, p.cfg.Hermes)
	if err != nil {
		return err
	}
	v, err := p.Hermes.Provider(ctx, p.Address().Hex())
	if err != nil {
		return err
	}
	unsettled, ok := new(big.Int).SetString(e.Unsettled, 10)
	if !ok {
		return errors.New("node: bad unsettled amount")
	}
	txFee := new(big.Int)
	if v.LatestPromise != nil && v.LatestPromise.Fee != nil {
		txFee.Set(v.LatestPromise.Fee)
	}
	hermesFee := new(big.Int)
	if st.Status != chain.HermesPenalty { // a hermes in penalty takes no fee
		hermesFee.Mul(unsettled, big.NewInt(int64(st.FeeBps)))
		hermesFee.Quo(hermesFee, big.NewInt(10000))
	}
	payout := new(big.Int).Sub(unsettled, hermesFee)
	payout.Sub(payout, txFee)
	if payout.Sign() < 0 {
		payout.SetInt64(0)
	}
	e.Identity = p.Address().Hex()
	e.HermesFeeBps = st.FeeBps
	e.SettleHermesFee, e.SettleTransactorFee, e.SettlePayout = hermesFee.String(), txFee.String(), payout.String()
	return nil
}

// nodeMetrics is the daemon's Prometheus collector: it reads the node's
// parts on each scrape, plus counters of ended provider sessions.
type nodeMetrics struct {
	n    *DaemonNode
	prov *ProviderService
	conn *ConnectionAPI

	mu           sync.Mutex
	endedTotal   uint64
	endedBytes   uint64
	endedInvoice uint64
	endedPaid    uint64
	endedRefused uint64
	endedErrors  map[string]uint64
	provEnds     endCounts
	hooked       *Provider

	sessionsActive, sessionsTotal, bytes, invoices, payErrors *prometheus.Desc
	earnings, p2pPeers, tunnelPeers, connected, consBytes     *prometheus.Desc
	spent, invoicesPaid, invoicesRefused, settlements         *prometheus.Desc
	sessionsEnded, consEnded                                  *prometheus.Desc
}

// endCounts counts ended sessions by paystream.EndReason: a fixed set of
// keys, never text from the peer. The zero value is ready to use.
type endCounts struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (c *endCounts) add(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]uint64{}
	}
	c.n[paystream.EndReason(err)]++
}

// snapshot returns the counts in paystream.EndReasons' order.
func (c *endCounts) snapshot(reasons []string) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]uint64, len(reasons))
	for i, r := range reasons {
		out[i] = c.n[r]
	}
	return out
}

func newNodeMetrics(n *DaemonNode, prov *ProviderService, conn *ConnectionAPI) *nodeMetrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &nodeMetrics{
		n: n, prov: prov, conn: conn, endedErrors: map[string]uint64{},
		sessionsActive:  d("openmyst_provider_sessions_active", "Provider sessions running now."),
		sessionsTotal:   d("openmyst_provider_sessions_total", "Provider sessions admitted since the daemon started."),
		sessionsEnded:   d("openmyst_provider_sessions_ended_total", "Provider sessions ended since the daemon started, by reason (normal, path_lost, stream_lost, a session protocol error code, other).", "reason"),
		bytes:           d("openmyst_provider_bytes_total", "Tunnel bytes (up plus down) of provider sessions since the daemon started."),
		invoices:        d("openmyst_provider_invoices_sent_total", "Invoices sent to consumers since the daemon started."),
		invoicesPaid:    d("openmyst_provider_invoices_paid_total", "Invoices consumers paid with a valid exchange message since the daemon started."),
		invoicesRefused: d("openmyst_provider_invoices_refused_total", "Exchange messages (payments) refused as invalid since the daemon started."),
		settlements:     d("openmyst_provider_settlements", "Settlement attempts in the provider's history (which keeps the newest 10,000), by status.", "status"),
		payErrors:       d("openmyst_provider_payment_errors_total", "Provider sessions ended by a payment error, by reason.", "reason"),
		earnings:        d("openmyst_provider_earnings_myst", "Provider earnings in MYST: settled on chain, and unsettled (hermes promises above that).", "state"),
		p2pPeers:        d("openmyst_p2p_peers", "Connected libp2p peers."),
		tunnelPeers:     d("openmyst_tunnel_peers", "WireGuard peers of the provider's exit (one per running session)."),
		connected:       d("openmyst_consumer_connected", "1 while the consumer connection is up."),
		consBytes:       d("openmyst_consumer_bytes_total", "Tunnel bytes of the current consumer connection, by direction.", "direction"),
		spent:           d("openmyst_consumer_spent_myst", "MYST promised for the current consumer connection."),
		consEnded:       d("openmyst_consumer_sessions_ended_total", "Consumer sessions ended since the daemon started, by reason (as openmyst_provider_sessions_ended_total).", "reason"),
	}
}

// payErrorReasons names the payment errors a provider session ends with.
var payErrorReasons = []struct {
	err    error
	reason string
}{
	{pingpong.ErrPaymentTimeout, "payment_timeout"},
	{pingpong.ErrUnpaidLimit, "unpaid_limit"},
	{pingpong.ErrBadExchange, "bad_exchange"},
	{pingpong.ErrHermesRejected, "hermes_rejected"},
	{pingpong.ErrInsufficientBalance, "insufficient_balance"},
}

// hook counts p's ended sessions (once per provider).
func (m *nodeMetrics) hook(p *Provider) {
	m.mu.Lock()
	if m.hooked == p {
		m.mu.Unlock()
		return
	}
	m.hooked = p
	m.mu.Unlock()
	p.Sessions.OnEnded(m.ended)
}

// ended counts one ended provider session.
func (m *nodeMetrics) ended(e provider.Ended) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.endedTotal++
	m.provEnds.add(e.Err)
	m.endedBytes += e.Bytes
	m.endedInvoice += uint64(e.Stats.Invoices)
	m.endedPaid += uint64(e.Stats.Paid)
	m.endedRefused += uint64(e.Stats.Refused)
	for _, r := range payErrorReasons {
		if errors.Is(e.Err, r.err) {
			m.endedErrors[r.reason]++
		}
	}
}

// Describe implements prometheus.Collector.
func (m *nodeMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.sessionsActive, m.sessionsTotal, m.bytes, m.invoices, m.payErrors,
		m.earnings, m.p2pPeers, m.tunnelPeers, m.connected, m.consBytes, m.spent, m.invoicesPaid, m.invoicesRefused, m.settlements, m.sessionsEnded, m.consEnded} {
		ch <- d
	}
}

// weiToMYST converts for a float metric (precision is the float's).
func weiToMYST(wei *big.Int) float64 {
	if wei == nil {
		return 0
	}
	f, _ := new(big.Rat).SetFrac(wei, big.NewInt(1e18)).Float64()
	return f
}

// Collect implements prometheus.Collector.
func (m *nodeMetrics) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	if m.n.P2P != nil {
		gauge(m.p2pPeers, float64(len(m.n.P2P.Host.Network().Peers())))
	}
	var live []provider.Status
	p, _ := m.prov.running()
	if p != nil {
		m.hook(p)
		live = p.Sessions.Sessions()
	}
	m.mu.Lock()
	total, b, inv, paid, refused := m.endedTotal, m.endedBytes, m.endedInvoice, m.endedPaid, m.endedRefused
	errs := make(map[string]uint64, len(payErrorReasons))
	for _, r := range payErrorReasons {
		errs[r.reason] = m.endedErrors[r.reason]
	}
	m.mu.Unlock()
	reasons := paystream.EndReasons()
	ends := m.provEnds.snapshot(reasons)
	for _, s := range live {
		total++
		b += s.Bytes
		inv += uint64(s.Tracker.Invoices)
		paid += uint64(s.Tracker.Paid)
		refused += uint64(s.Tracker.Refused)
	}
	gauge(m.sessionsActive, float64(len(live)))
	gauge(m.tunnelPeers, float64(len(live)))
	counter(m.sessionsTotal, float64(total))
	counter(m.bytes, float64(b))
	counter(m.invoices, float64(inv))
	counter(m.invoicesPaid, float64(paid))
	counter(m.invoicesRefused, float64(refused))
	for r, v := range errs {
		counter(m.payErrors, float64(v), r)
	}
	for i, r := range reasons { // every reason, zero included
		counter(m.sessionsEnded, float64(ends[i]), r)
	}
	if p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		e, err := p.Earnings(ctx)
		cancel()
		if err == nil {
			gauge(m.earnings, weiToMYST(e.Settled), "settled")
			gauge(m.earnings, weiToMYST(e.Unsettled), "unsettled")
		} else {
			m.n.Log.Debug("metrics: earnings", "err", err)
		}
		m.collectSettlements(p.Settlements, gauge)
	}
	if m.conn != nil {
		st, err := m.conn.Status(context.Background())
		up := err == nil && st.Running
		gauge(m.connected, map[bool]float64{true: 1, false: 0}[up])
		if err == nil {
			counter(m.consBytes, float64(st.RxBytes), "rx")
			counter(m.consBytes, float64(st.TxBytes), "tx")
			if w, ok := new(big.Int).SetString(st.Spent, 10); ok {
				gauge(m.spent, weiToMYST(w))
			}
		}
		for i, v := range m.n.consumerEnds.snapshot(reasons) {
			counter(m.consEnded, float64(v), reasons[i])
		}
	}
}

// collectSettlements reports the settlement history by status (every
// status, zero included, so that a dashboard sees the series) from the
// counts the history keeps on write: a scrape costs the same with 10
// records as with 10,000.
func (m *nodeMetrics) collectSettlements(h *SettlementHistory, gauge func(*prometheus.Desc, float64, ...string)) {
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	by, err := h.StatusCounts(ctx)
	if err != nil {
		m.n.Log.Debug("metrics: settlements", "err", err)
		return
	}
	for st, v := range by {
		gauge(m.settlements, float64(v), st)
	}
}

// startUI is the daemon's dashboard part: the event bus and GET /events
// fed by a pump that samples the provider's sessions and earnings and the
// consumer connection, GET /provider/sessions, PUT /provider/price,
// GET /metrics and the web UI pages.
func startUI(ctx context.Context, n *DaemonNode) (func(context.Context) error, error) {
	bus := tequilapi.NewEvents(0)
	n.API.Add(tequilapi.EventRoutes(bus, n.Log)...)
	n.API.Add(tequilapi.ProviderSessionRoutes(n.providerSvc, n.Log)...)
	n.API.Add(tequilapi.PriceRoutes(rememberingPricer{n}, n.Log)...)
	n.API.Add(tequilapi.ProviderStatusRoutes(n.providerSvc, n.Log)...)
	n.API.Add(tequilapi.ProviderHistoryRoutes(providerHistory{n.providerSvc}, n.Log)...)
	reg := prometheus.NewRegistry()
	metrics := newNodeMetrics(n, n.providerSvc, n.connection)
	reg.MustRegister(metrics)
	if n.NAT != nil {
		reg.MustRegister(NATCollector(n.NAT))
	}
	if n.Discovery != nil {
		reg.MustRegister(n.Discovery.Collector())
	}
	n.API.Add(tequilapi.MetricsRoutes(reg, n.Log)...)
	n.API.Add(webui.Routes(n.API, n.Config.Version, n.Log)...)

	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pumpEvents(ctx, bus, n.providerSvc, n.connection, metrics.hook)
		// The daemon is stopping: end the event streams so that the
		// API server's graceful shutdown does not wait for them.
		bus.Close()
	}()
	return func(context.Context) error {
		cancel()
		<-done
		return nil
	}, nil
}

// pumpEvents publishes state changes on bus until ctx ends; onProvider
// is called with the running provider on each round.
func pumpEvents(ctx context.Context, bus *tequilapi.Events, prov *ProviderService, conn *ConnectionAPI, onProvider func(*Provider)) {
	live := map[string]tequilapi.ProviderSessionDTO{}
	var lastConn *tequilapi.ConnectionEvent
	var lastEarn *tequilapi.EarningsDTO
	var lastEarnAt time.Time
	t := time.NewTicker(eventPoll)
	defer t.Stop()
	for {
		now := time.Now()
		if p, _ := prov.running(); p != nil {
			onProvider(p)
			seen := map[string]bool{}
			for _, s := range liveSessions(p, now) {
				seen[s.ID] = true
				old, ok := live[s.ID]
				live[s.ID] = s
				switch {
				case !ok:
					bus.Publish("session/"+s.ID, false, tequilapi.Event{Type: tequilapi.EventSessionStarted, Data: s})
				case old.Bytes != s.Bytes || old.Earned != s.Earned || old.Invoices != s.Invoices || int(old.DurationSeconds) != int(s.DurationSeconds):
					bus.Publish("session/"+s.ID, false, tequilapi.Event{Type: tequilapi.EventSessionUpdated, Data: s})
				}
			}
			for id, s := range live {
				if !seen[id] {
					delete(live, id)
					bus.Publish("session/"+id, true, tequilapi.Event{Type: tequilapi.EventSessionEnded, Data: s})
				}
			}
			if now.Sub(lastEarnAt) >= earningsPoll {
				lastEarnAt = now
				ectx, cancel := context.WithTimeout(ctx, 3*time.Second)
				// Two reads (hermes, chain) per poll; the fee estimate's
				// chain reads only when the earnings changed.
				if e, err := p.Earnings(ectx); err == nil && (lastEarn == nil || lastEarn.Earned != e.Earned.String() || lastEarn.Settled != e.Settled.String()) {
					if dto, err := (EarningsAPI{Provider: p}).Earnings(ectx); err == nil {
						lastEarn = &dto
						bus.Publish("earnings", false, tequilapi.Event{Type: tequilapi.EventEarnings, Data: dto})
					}
				}
				cancel()
			}
		}
		if conn != nil {
			ev := tequilapi.ConnectionEvent{}
			if st, err := conn.Status(ctx); err == nil {
				ev = tequilapi.ConnectionEvent{Connected: true, Status: &st}
			}
			if lastConn == nil || !sameConn(*lastConn, ev) {
				lastConn = &ev
				bus.Publish("connection", false, tequilapi.Event{Type: tequilapi.EventConnection, Data: ev})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sameConn(a, b tequilapi.ConnectionEvent) bool {
	if a.Connected != b.Connected || (a.Status == nil) != (b.Status == nil) {
		return false
	}
	if a.Status == nil {
		return true
	}
	x, y := *a.Status, *b.Status
	return x.SessionID == y.SessionID && x.RxBytes == y.RxBytes && x.TxBytes == y.TxBytes && x.Spent == y.Spent &&
		x.Running == y.Running && x.Path == y.Path && int(x.DurationSeconds) == int(y.DurationSeconds) &&
		x.State == y.State && sameKillSwitch(x.KillSwitch, y.KillSwitch)
}

// sameKillSwitch reports whether two statuses show the same kill switch
// (the dashboard shows its state, setting and exemptions).
func sameKillSwitch(a, b *tequilapi.KillSwitchStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Active == b.Active && a.Setting == b.Setting && slices.Equal(a.Exemptions, b.Exemptions)
}
