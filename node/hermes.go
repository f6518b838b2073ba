package node

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
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
	"github.com/openmyst/openmyst/internal/defaults"
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
	// InsecureHTTP permits plain HTTP on a non-loopback Listen (dev
	// chains only).
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
	// CommitDelay is the longest a group commit waits for accepts already
	// on their way (0: the hermes default; negative: never wait; see
	// hermes.Config.CommitDelay).
	CommitDelay time.Duration
	// CPUSlots is how many requests may run their CPU-bound part at once
	// (0: the hermes default; see hermes.Config.CPUSlots).
	CPUSlots int
	// ChainPoll is how often to look for top-up events (default 1 s).
	ChainPoll time.Duration
	// ChainState is the file keeping pending settlement transactions and
	// the chain event watcher's position across restarts (default:
	// chain-state.db beside a SQLite store; with PostgreSQL and no
	// ChainState both are kept in memory only).
	ChainState string
	// Confirmations is how many blocks must be on top of a channel event
	// before the hermes acts on it (0: at the head; see docs/chain.md).
	Confirmations uint64
	// MaxLogRange is the largest eth_getLogs block range (0: the chain
	// package's default); refused ranges are split.
	MaxLogRange uint64
	// TxReplaceAfter is how long a settlement transaction may stay
	// unmined before it is replaced with higher fees (0: the chain
	// package's default).
	TxReplaceAfter time.Duration
	// TxMaxFeeCap is the fee ceiling in wei per gas for settlement
	// transactions (nil: the chain package's default, a multiple of the
	// first version's fee cap).
	TxMaxFeeCap *big.Int
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
	state  *chain.StateDB // nil: chain state in memory
	tx     *chain.Transactor
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
	cfg.Log = cmp.Or(cfg.Log, slog.Default())
	cfg.Listen = cmp.Or(cfg.Listen, "127.0.0.1:0")
	if err := checkHermesListen(cfg); err != nil {
		return nil, err
	}
	cfg.SettleThreshold = cmp.Or(cfg.SettleThreshold, big.NewInt(1))
	cfg.SettleInterval = defaults.Positive(cfg.SettleInterval, 30*time.Second)
	cfg.MinConsumerFee = cmp.Or(cfg.MinConsumerFee, new(big.Int))
	switch {
	case cfg.MaxUnrevealed == 0:
		cfg.MaxUnrevealed = 64
	case cfg.MaxUnrevealed < 0:
		cfg.MaxUnrevealed = 0
	}
	cfg.ChainPoll = defaults.Positive(cfg.ChainPoll, time.Second)
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
	statePath := cfg.ChainState
	if statePath == "" && !store.IsPostgres(cfg.DSN) {
		statePath = filepath.Join(filepath.Dir(cfg.DSN), "chain-state.db")
	}
	var state *chain.StateDB
	if statePath != "" {
		if state, err = chain.OpenStateDB(statePath); err != nil {
			st.Close()
			return nil, fmt.Errorf("node: hermes chain state: %w", err)
		}
	} else {
		cfg.Log.Warn("hermes: no --hermes.chain-state file: pending settlement transactions and the event watcher position are not kept across restarts")
	}
	adapter := onchain.New(cfg.Chain, cfg.Hermes, cfg.ChainPoll, cfg.Log)
	wc := onchain.WatchConfig{Confirmations: cfg.Confirmations, MaxLogRange: cfg.MaxLogRange}
	if state != nil {
		wc.Store = state
	}
	adapter.SetWatchConfig(wc)
	tx := cfg.Chain.Transactor()
	if tx != nil {
		if cfg.TxReplaceAfter > 0 {
			tx.ReplaceAfter = cfg.TxReplaceAfter
		}
		if cfg.TxMaxFeeCap != nil {
			tx.MaxFeeCap = cfg.TxMaxFeeCap
		}
		if state != nil {
			tx.SetPendingStore(state)
		}
	}
	closeState := func() {
		if tx != nil && state != nil {
			tx.SetPendingStore(nil)
		}
		if state != nil {
			_ = state.Close()
		}
	}
	reg := prometheus.NewRegistry()
	if cfg.ProcessMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	svc, err := hermes.New(hermes.Config{
		ChainID: cfg.Chain.ChainID(), HermesID: cfg.Hermes, Operator: cfg.Operator, FeeBasisPoints: hs.FeeBps,
		MinConsumerFee: cfg.MinConsumerFee, ProviderPromiseFee: cfg.ProviderPromiseFee, MaxUnrevealed: cfg.MaxUnrevealed, SettleThreshold: cfg.SettleThreshold,
		SettleInterval: cfg.SettleInterval, MaxBatch: cfg.MaxBatch, CommitDelay: cfg.CommitDelay, CPUSlots: cfg.CPUSlots, Log: cfg.Log, Metrics: hermes.NewMetrics(reg), Limits: cfg.Limits,
	}, st, adapter)
	if err != nil {
		closeState()
		st.Close()
		return nil, fmt.Errorf("node: hermes: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	h := &Hermes{Service: svc, FeeBps: hs.FeeBps, st: st, state: state, tx: tx, listen: cfg.Listen, tls: cfg.TLS, log: cfg.Log, reg: reg, cancel: cancel}
	if tx != nil && state != nil {
		// Settlements a previous run left pending are finished first;
		// the settlement worker's sends wait for this.
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			ResumePending(rctx, tx, "hermes", cfg.Log)
		}()
	}
	h.wg.Add(1)
	go func() { defer h.wg.Done(); _ = svc.Run(rctx) }()
	if err := h.StartAPI(); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// checkHermesListen allows plain HTTP on a loopback address (devnets)
// and, with InsecureHTTP, anywhere on a dev chain; TLS anywhere. It logs
// plain HTTP.
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
		if err := checkPlainListen(cfg.Chain.ChainID().Uint64(), cfg.Listen, "hermes.insecure-http"); err != nil {
			return err
		}
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
	if h.state != nil {
		if h.tx != nil {
			h.tx.SetPendingStore(nil)
		}
		if err := h.state.Close(); err != nil {
			h.log.Error("hermes: close chain state", "err", err)
		}
	}
	return h.st.Close()
}
