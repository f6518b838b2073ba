package node

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/nat/netcheck"
	"github.com/openmyst/openmyst/nat/portmap"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/probe"
	"github.com/openmyst/openmyst/tequilapi"
)

// Defaults of NATConfig.
const (
	// DefaultNATCheckEvery is how often the STUN mapping check and the
	// peer reachability check repeat.
	DefaultNATCheckEvery = 30 * time.Minute
	// DefaultFirstPeerCheck is how long after start the first peer check
	// runs (peers connect and identify first).
	DefaultFirstPeerCheck = 30 * time.Second
	// DefaultNATChangeSettle is how long after a reachability change the
	// checks run again (a relay reservation or port mapping settles
	// first).
	DefaultNATChangeSettle = 5 * time.Second
)

// NATConfig configures a node's reachability view (StartNAT).
type NATConfig struct {
	// P2P is the node's libp2p host.
	P2P *p2p.Node
	// ICE, when it names servers, is where the STUN mapping check asks
	// (its stun: and UDP turn: servers); its policy's AllowPrivate lets
	// devnet servers on loopback be asked.
	ICE *ice.Config
	// AllowPrivate lets this node, as a checker for others, dial loopback
	// and private addresses (devnets: the nodes that do not advertise
	// public addresses only).
	AllowPrivate bool
	// CheckPeers is how many peers a reachability check asks (default
	// probe.DefaultPeers).
	CheckPeers int
	// CheckEvery repeats the checks (default DefaultNATCheckEvery).
	CheckEvery time.Duration
	// FirstPeerCheck delays the first peer check (default
	// DefaultFirstPeerCheck; negative: none at start, the checks every
	// CheckEvery and after reachability changes still run).
	FirstPeerCheck time.Duration
	// ManualPeerCheck runs peer checks only when asked (CheckReachability,
	// POST /nat/check): a node that serves nobody (a consumer daemon)
	// does not spend other peers' checks on itself.
	ManualPeerCheck bool
	// ChangeSettle delays the checks after a reachability change
	// (default DefaultNATChangeSettle).
	ChangeSettle time.Duration
	// Report, when set, receives a one-line summary whenever the status
	// changes (reachability, a check's result).
	Report func(line string)
	// Log receives events (default slog.Default()).
	Log *slog.Logger
}

// NATMonitor is a node's view of how others reach it: AutoNAT's verdict
// and the advertised direct and relay addresses (p2p), the NAT's mapping
// behaviour (STUN, nat/netcheck), port mappings (nat/portmap) and peer
// reachability checks (probe). It also serves the probe protocol for
// other peers. It implements tequilapi.NATService.
type NATMonitor struct {
	cfg     NATConfig
	log     *slog.Logger
	probe   *probe.Service
	servers []string
	wake    chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu       sync.Mutex
	mapping  *netcheck.Result
	mapErr   error
	portMaps func() []portmap.Mapping
	lastLine string
}

// StartNAT starts serving the probe protocol on cfg.P2P and following
// its reachability; Close stops both.
func StartNAT(cfg NATConfig) (*NATMonitor, error) {
	if cfg.P2P == nil {
		return nil, errors.New("node: NAT status needs a p2p node")
	}
	cfg.Log = cmp.Or(cfg.Log, slog.Default())
	cfg.CheckPeers = defaults.Positive(cfg.CheckPeers, probe.DefaultPeers)
	cfg.CheckEvery = defaults.Positive(cfg.CheckEvery, DefaultNATCheckEvery)
	cfg.ChangeSettle = defaults.Positive(cfg.ChangeSettle, DefaultNATChangeSettle)
	cfg.FirstPeerCheck = cmp.Or(cfg.FirstPeerCheck, DefaultFirstPeerCheck)
	ps, err := probe.New(probe.Config{Host: cfg.P2P.Host, AllowPrivate: cfg.AllowPrivate, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	m := &NATMonitor{cfg: cfg, log: cfg.Log, probe: ps, wake: make(chan struct{}, 1)}
	if cfg.ICE != nil {
		urls := make([]string, 0, len(cfg.ICE.Servers))
		for _, s := range cfg.ICE.Servers {
			urls = append(urls, s.URL)
		}
		m.servers = netcheck.ServersFromURLs(urls)
	}
	ps.OnReport(func(probe.Report) { m.report() })
	var last network.Reachability
	cfg.P2P.OnNATChange(func(s p2p.NATState) {
		m.mu.Lock()
		changed := s.Reachability != last
		last = s.Reachability
		m.mu.Unlock()
		// Every change may change the summary (a relay reservation
		// turns "unreachable" into "relay-only"); report dedups.
		m.report()
		if changed {
			select {
			case m.wake <- struct{}{}:
			default:
			}
		}
	})
	m.report() // the first line: what is known at start
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run(ctx)
	}()
	return m, nil
}

// Close stops the checks and the probe protocol.
func (m *NATMonitor) Close() error {
	m.cancel()
	m.wg.Wait()
	return m.probe.Close()
}

// run repeats the checks every CheckEvery and shortly after a
// reachability change, until ctx ends.
func (m *NATMonitor) run(ctx context.Context) {
	m.checkMapping(ctx)
	first := m.cfg.FirstPeerCheck
	peerDue := time.NewTimer(max(first, 0))
	if first < 0 {
		peerDue.Stop()
	}
	defer peerDue.Stop()
	every := time.NewTicker(m.cfg.CheckEvery)
	defer every.Stop()
	// Port mappings are read, not pushed: notice their changes.
	poll := time.NewTicker(time.Minute)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			m.report()
		case <-peerDue.C:
			m.checkPeers(ctx)
		case <-every.C:
			m.checkMapping(ctx)
			m.checkPeers(ctx)
		case <-m.wake:
			select {
			case <-ctx.Done():
				return
			case <-time.After(m.cfg.ChangeSettle):
			}
			m.checkMapping(ctx)
			m.checkPeers(ctx)
		}
	}
}

// checkMapping runs the STUN check (when the node has servers).
func (m *NATMonitor) checkMapping(ctx context.Context) {
	if len(m.servers) == 0 {
		return
	}
	allow := m.cfg.ICE != nil && m.cfg.ICE.Policy.AllowPrivate
	r, err := netcheck.Check(ctx, netcheck.Config{Servers: m.servers, AllowPrivate: allow})
	if ctx.Err() != nil {
		return
	}
	m.mu.Lock()
	m.mapping, m.mapErr = &r, err
	if err != nil {
		m.mapping = &netcheck.Result{Behavior: netcheck.Unknown, At: time.Now()}
	}
	m.mu.Unlock()
	m.report()
}

// checkPeers runs a peer reachability check (unless ManualPeerCheck),
// logging why it did not.
func (m *NATMonitor) checkPeers(ctx context.Context) {
	if m.cfg.ManualPeerCheck {
		return
	}
	if _, err := m.probe.CheckSelf(ctx, m.cfg.CheckPeers); err != nil && ctx.Err() == nil {
		m.log.Info("nat: no peer reachability check", "reason", err)
	}
}

// SetPortMappings names where the node's current port mappings come from
// (the provider that keeps them with portmap.Keep); nil: none.
func (m *NATMonitor) SetPortMappings(list func() []portmap.Mapping) {
	m.mu.Lock()
	m.portMaps = list
	m.mu.Unlock()
	m.report()
}

// providerPortMappings lists p's port mappings (none while p starts).
func providerPortMappings(p *Provider) []portmap.Mapping {
	if p == nil {
		return nil
	}
	return p.PortMappings()
}

// report sends the summary line to Report (and the log) when it changed.
func (m *NATMonitor) report() {
	line := "nat: " + m.Status().Summary()
	m.mu.Lock()
	changed := line != m.lastLine
	m.lastLine = line
	m.mu.Unlock()
	if !changed {
		return
	}
	m.log.Info(line)
	if m.cfg.Report != nil {
		m.cfg.Report(line)
	}
}

// Probe is the node's probe service (peer reachability checks).
func (m *NATMonitor) Probe() *probe.Service { return m.probe }

// Status returns the node's reachability view.
func (m *NATMonitor) Status() tequilapi.NATStatusDTO {
	s := m.cfg.P2P.NATState()
	out := tequilapi.NATStatusDTO{
		Reachability: p2p.ReachabilityName(s.Reachability),
		NATTypeTCP:   p2p.NATTypeName(s.TCP), NATTypeUDP: p2p.NATTypeName(s.UDP),
		DirectAddrs: []string{}, RelayAddrs: []string{}, PortMappings: []tequilapi.PortMappingDTO{},
	}
	if !s.Since.IsZero() {
		out.ReachabilitySince = s.Since.UTC().Format(time.RFC3339)
	}
	for _, a := range s.Direct() {
		out.DirectAddrs = append(out.DirectAddrs, a.String())
	}
	for _, a := range s.Relayed() {
		out.RelayAddrs = append(out.RelayAddrs, a.String())
	}
	switch {
	case s.Reachability == network.ReachabilityPublic:
		out.Access = tequilapi.AccessDirect
	case s.Reachability == network.ReachabilityPrivate && len(out.RelayAddrs) > 0:
		out.Access = tequilapi.AccessRelayOnly
	case s.Reachability == network.ReachabilityPrivate:
		out.Access = tequilapi.AccessUnreachable
	default:
		out.Access = tequilapi.AccessUnknown
	}
	m.mu.Lock()
	list := m.portMaps
	if r := m.mapping; r != nil {
		md := &tequilapi.NATMappingDTO{Behavior: r.Behavior, Servers: m.servers, CheckedAt: r.At.UTC().Format(time.RFC3339)}
		if r.Public.IsValid() {
			md.PublicAddr = r.Public.String()
		}
		if m.mapErr != nil {
			md.Error = m.mapErr.Error()
		}
		out.Mapping = md
	}
	m.mu.Unlock()
	if list != nil {
		for _, mp := range list() {
			out.PortMappings = append(out.PortMappings, tequilapi.PortMappingDTO{Protocol: mp.Protocol, Method: mp.Method,
				External: mp.External.String(), InternalPort: int(mp.Internal.Port()), LifetimeSeconds: int64(mp.Lifetime.Seconds())})
		}
	}
	sort.Slice(out.PortMappings, func(i, j int) bool { return out.PortMappings[i].External < out.PortMappings[j].External })
	if rep, ok := m.probe.Last(); ok {
		c := peerCheckDTO(rep)
		out.PeerCheck = &c
	}
	return out
}

func peerCheckDTO(r probe.Report) tequilapi.PeerCheckDTO {
	out := tequilapi.PeerCheckDTO{CheckedAt: r.At.UTC().Format(time.RFC3339), Asked: r.Asked, Reachable: r.Reachable, Results: []tequilapi.PeerCheckResultDTO{}}
	for _, x := range r.Results {
		out.Results = append(out.Results, tequilapi.PeerCheckResultDTO{
			Peer: x.Peer.String(), Reachable: x.Reachable, Path: x.Path, Addr: x.Addr, RTTMillis: x.RTT.Milliseconds(), Error: x.Error,
		})
	}
	return out
}

// NATStatus implements tequilapi.NATService.
func (m *NATMonitor) NATStatus(context.Context) (tequilapi.NATStatusDTO, error) {
	return m.Status(), nil
}

// CheckReachability implements tequilapi.NATService.
func (m *NATMonitor) CheckReachability(ctx context.Context) (tequilapi.PeerCheckDTO, error) {
	r, err := m.probe.CheckSelf(ctx, m.cfg.CheckPeers)
	switch {
	case errors.Is(err, probe.ErrTooSoon):
		return tequilapi.PeerCheckDTO{}, tequilapi.ErrCheckTooSoon
	case errors.Is(err, probe.ErrNoPeers):
		return tequilapi.PeerCheckDTO{}, tequilapi.ErrNoCheckers
	case err != nil:
		return tequilapi.PeerCheckDTO{}, err
	}
	return peerCheckDTO(r), nil
}

// natMetrics is the NAT part of GET /metrics.
type natMetrics struct {
	m                                                        *NATMonitor
	reach, relayAddrs, mapping, portMaps, checked, reachable *prometheus.Desc
}

// NATCollector returns m's Prometheus gauges.
func NATCollector(m *NATMonitor) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &natMetrics{m: m,
		reach:      d("openmyst_nat_reachability", "1 for the node's AutoNAT reachability (public, private, unknown), 0 for the others.", "state"),
		relayAddrs: d("openmyst_nat_relay_addresses", "Circuit relay addresses the node advertises (relay reservations held)."),
		mapping:    d("openmyst_nat_mapping", "1 for the NAT mapping behaviour the STUN check found, 0 for the others.", "behavior"),
		portMaps:   d("openmyst_nat_port_mappings", "Ports the home router forwards to the node (UPnP IGD, NAT-PMP)."),
		checked:    d("openmyst_nat_peer_check_asked", "Peers asked in the latest reachability check (M of \"reachable from N of M\")."),
		reachable:  d("openmyst_nat_peer_check_reachable", "Peers that reached the node in the latest reachability check (N)."),
	}
}

// Describe implements prometheus.Collector.
func (c *natMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.reach, c.relayAddrs, c.mapping, c.portMaps, c.checked, c.reachable} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *natMetrics) Collect(ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	one := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	st := c.m.Status()
	for _, s := range []string{"public", "private", "unknown"} {
		g(c.reach, one(st.Reachability == s), s)
	}
	g(c.relayAddrs, float64(len(st.RelayAddrs)))
	if st.Mapping != nil {
		for _, b := range []string{netcheck.None, netcheck.EndpointIndependent, netcheck.EndpointDependent, netcheck.UDPBlocked, netcheck.Unknown} {
			g(c.mapping, one(st.Mapping.Behavior == b), b)
		}
	}
	g(c.portMaps, float64(len(st.PortMappings)))
	if pc := st.PeerCheck; pc != nil {
		g(c.checked, float64(pc.Asked))
		g(c.reachable, float64(pc.Reachable))
	}
}
