package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/hermes/api"
	"github.com/openmyst/openmyst/hermes/onchain"
	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/identity"
)

// HermesConfig configures an in-process hermes.
type HermesConfig struct {
	// Chain is the chain client (its transactor pays settlement gas).
	Chain *chain.Client
	// Hermes is the Hermes contract; Operator signs hermes promises.
	Hermes   common.Address
	Operator identity.Signer
	// DSN is the store: a SQLite file path or postgres://...
	DSN string
	// Listen is the API address (default 127.0.0.1:0). Without TLS it
	// must be loopback unless InsecureHTTP is set.
	Listen string
	// TLS, when set, serves the API over HTTPS (see hermes.CertFiles).
	TLS *tls.Config
	// InsecureHTTP permits plain HTTP on a non-loopback Listen.
	InsecureHTTP bool
	// SettleThreshold and SettleInterval drive the settlement worker
	// (defaults 1 wei and 30 s).
	SettleThreshold *big.Int
	SettleInterval  time.Duration
	// MinConsumerFee is the transactor fee consumer promises carry.
	MinConsumerFee *big.Int
	// ProviderPromiseFee is the transactor fee the hermes puts on its
	// promises to providers (paid to whoever settles them; nil: 0).
	ProviderPromiseFee *big.Int
	// MaxUnrevealed caps a provider's promises waiting for R (0: 64;
	// negative: no limit).
	MaxUnrevealed int
	// MaxBatch caps exchange messages per group commit (0: the hermes
	// default).
	MaxBatch int
	// ChainPoll is how often to look for top-up events (default 1 s).
	ChainPoll time.Duration
	// ProcessMetrics adds the Go runtime and process collectors to
	// /metrics.
	ProcessMetrics bool
	// Limits are the flood defences (rate limits, negative cache, map
	// caps); zero fields take the hermes defaults.
	Limits hermes.Limits
	// Log receives events (default slog.Default()).
	Log *slog.Logger
}

// Hermes is a running hermes: service, store, HTTP API.
type Hermes struct {
	// Service is the hermes service (for in-process checks).
	Service *hermes.Service
	// FeeBps is the hermes fee in basis points, read from the chain.
	FeeBps uint16
	st     store.Store
	listen string
	tls    *tls.Config
	log    *slog.Logger
	reg    *prometheus.Registry

	mu      sync.Mutex
	cancel  context.CancelFunc // the whole hermes
	httpCtl context.CancelFunc // the HTTP server only
	wg      sync.WaitGroup
	httpWG  sync.WaitGroup
}

// StartHermes starts a hermes and its HTTP API.
func StartHermes(ctx context.Context, cfg HermesConfig) (*Hermes, error) {
	if cfg.Chain == nil || cfg.Operator == nil || cfg.DSN == "" {
		return nil, errors.New("node: hermes needs a chain, an operator and a store")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if err := checkHermesListen(cfg); err != nil {
		return nil, err
	}
	if cfg.SettleThreshold == nil {
		cfg.SettleThreshold = big.NewInt(1)
	}
	if cfg.SettleInterval <= 0 {
		cfg.SettleInterval = 30 * time.Second
	}
	if cfg.MinConsumerFee == nil {
		cfg.MinConsumerFee = new(big.Int)
	}
	switch {
	case cfg.MaxUnrevealed == 0:
		cfg.MaxUnrevealed = 64
	case cfg.MaxUnrevealed < 0:
		cfg.MaxUnrevealed = 0
	}
	if cfg.ChainPoll <= 0 {
		cfg.ChainPoll = time.Second
	}
	hs, err := cfg.Chain.HermesState(ctx, cfg.Hermes)
	if err != nil {
		return nil, fmt.Errorf("node: read hermes %s: %w", cfg.Hermes.Hex(), err)
	}
	if cfg.Operator.Address() != hs.Operator {
		return nil, fmt.Errorf("operator %s does not operate hermes %s (its operator is %s)", cfg.Operator.Address().Hex(), cfg.Hermes.Hex(), hs.Operator.Hex())
	}
	st, err := store.Open(ctx, cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("node: open hermes store: %w", err)
	}
	reg := prometheus.NewRegistry()
	if cfg.ProcessMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	svc, err := hermes.New(hermes.Config{
		ChainID: cfg.Chain.ChainID(), HermesID: cfg.Hermes, Operator: cfg.Operator, FeeBasisPoints: hs.FeeBps,
		MinConsumerFee: cfg.MinConsumerFee, ProviderPromiseFee: cfg.ProviderPromiseFee, MaxUnrevealed: cfg.MaxUnrevealed, SettleThreshold: cfg.SettleThreshold,
		SettleInterval: cfg.SettleInterval, MaxBatch: cfg.MaxBatch, Log: cfg.Log, Metrics: hermes.NewMetrics(reg), Limits: cfg.Limits,
	}, st, onchain.New(cfg.Chain, cfg.Hermes, cfg.ChainPoll, cfg.Log))
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("node: hermes: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	h := &Hermes{Service: svc, FeeBps: hs.FeeBps, st: st, listen: cfg.Listen, tls: cfg.TLS, log: cfg.Log, reg: reg, cancel: cancel}
	h.wg.Add(1)
	go func() { defer h.wg.Done(); _ = svc.Run(rctx) }()
	if err := h.StartAPI(); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// checkHermesListen allows plain HTTP on a loopback address (devnets)
// and, with InsecureHTTP, anywhere; TLS anywhere. It logs plain HTTP.
func checkHermesListen(cfg HermesConfig) error {
	if cfg.TLS != nil {
		return nil
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("node: hermes listen address %q: %w", cfg.Listen, err)
	}
	switch {
	case api.Loopback(host):
		cfg.Log.Info("hermes: plain HTTP API on a loopback address (devnet only; serve TLS on a real network)", "listen", cfg.Listen)
	case cfg.InsecureHTTP:
		cfg.Log.Warn("hermes: INSECURE plain HTTP API on a non-loopback address: promises and secrets travel unencrypted", "listen", cfg.Listen)
	default:
		return fmt.Errorf("node: hermes listen address %s is not loopback: serve HTTPS (--tls.cert/--tls.key) or allow plain HTTP explicitly (--hermes.insecure-http)", cfg.Listen)
	}
	return nil
}

// URL is the API base URL (https:// when served over TLS).
func (h *Hermes) URL() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tls != nil {
		return "https://" + h.listen
	}
	return "http://" + h.listen
}

// StopAPI stops the HTTP API (the hermes looks unavailable to providers)
// without stopping the service; StartAPI brings it back on the same
// address. Used to test hermes outages.
func (h *Hermes) StopAPI() {
	h.mu.Lock()
	ctl := h.httpCtl
	h.httpCtl = nil
	h.mu.Unlock()
	if ctl != nil {
		ctl()
		h.httpWG.Wait()
	}
}

// StartAPI starts the HTTP API on the configured address (after the first
// start: the same address).
func (h *Hermes) StartAPI() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.httpCtl != nil {
		return nil
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old socket may linger a moment
		if ln, err = net.Listen("tcp", h.listen); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("node: hermes listen %s: %w", h.listen, err)
	}
	h.listen = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	h.httpCtl = cancel
	h.httpWG.Add(1)
	go func() {
		defer h.httpWG.Done()
		if h.tls != nil {
			_ = hermes.ServeTLS(ctx, ln, h.Service.Handler(h.reg), h.tls)
			return
		}
		_ = hermes.Serve(ctx, ln, h.Service.Handler(h.reg))
	}()
	return nil
}

// Close stops the API, the service and the store.
func (h *Hermes) Close() error {
	h.StopAPI()
	h.cancel()
	h.wg.Wait()
	return h.st.Close()
}
