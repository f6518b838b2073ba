package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/internal/retry"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/tequilapi"
)

// ServeConfig configures ServeProvider, the one way a provider is run:
// by `myst service` and by the daemon's --provider.serve.
type ServeConfig struct {
	// Provider is the provider configuration; Chain and Hermes come from
	// the Chain source.
	Provider ProviderConfig
	// Chain returns the chain client and hermes (a ChainConn's Chain, or a
	// fixed client).
	Chain func(ctx context.Context) (*chain.Client, common.Address, error)
	// CheckChainID, when set, refuses a chain by its id (the daemon's p2p
	// node gossips the proposals of one chain).
	CheckChainID func(chainID uint64) error
	// Retry, when its Initial is positive, starts the provider in the
	// background and retries a failed start (chain not reachable yet,
	// registration failed, ...) after Retry.Delay(failures) until it
	// runs, the service is closed, or a start fails with
	// ErrProviderConfig, which waiting cannot fix. The zero Retry starts
	// it now and returns the error.
	Retry retry.Backoff
}

// ErrProviderConfig is matched (errors.Is) by a provider start refused
// for its configuration or offer (a devnet shortcut off dev chains, the
// chain of another id, an offer that cannot be announced, ...): retrying
// it cannot succeed, so a background start stops.
var ErrProviderConfig = errors.New("node: the provider's configuration is refused")

// configError marks err as ErrProviderConfig, keeping its message.
type configError struct{ err error }

func (e configError) Error() string        { return e.err.Error() }
func (e configError) Unwrap() error        { return e.err }
func (e configError) Is(target error) bool { return target == ErrProviderConfig }

// refused marks err (nil: nil) as a refused configuration.
func refused(err error) error {
	if err == nil {
		return nil
	}
	return configError{err}
}

// ProviderService is a provider run by ServeProvider, or a daemon's
// provider slot that Start fills at runtime. It implements
// tequilapi.EarningsService, answering 404 not_found while it serves no
// provider and 503 provider_starting until the provider runs.
type ProviderService struct {
	// stopMu serializes Stop and Close: one of them closes the provider.
	stopMu  sync.Mutex
	mu      sync.Mutex
	serving bool
	cancel  context.CancelFunc
	done    chan struct{}
	p       *Provider
	// closers run after the provider closed (e.g. its location database).
	closers []func()
	// progress is the start's latest progress message (registration,
	// ...), startErr its latest failed attempt and nextAttempt when the
	// next one runs (zero: none, the start gave up), for the API while it
	// starts.
	progress    string
	startErr    error
	nextAttempt time.Time
}

var _ tequilapi.EarningsService = (*ProviderService)(nil)

// ErrAlreadyServing is returned by ProviderService.Start when it serves a
// provider already.
var ErrAlreadyServing = tequilapi.NewError(http.StatusConflict, "already_serving", "this node serves a provider already")

// ServeProvider starts the provider cfg describes (see ServeConfig.Retry).
func ServeProvider(ctx context.Context, cfg ServeConfig) (*ProviderService, error) {
	s := &ProviderService{}
	if err := s.Start(ctx, cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Start starts the provider cfg describes in s (see ServeConfig.Retry):
// with no Retry it returns once the provider runs. onClose runs after the
// provider closed. It fails with ErrAlreadyServing when s serves one.
func (s *ProviderService) Start(ctx context.Context, cfg ServeConfig, onClose ...func()) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return ErrAlreadyServing
	}
	s.serving, s.progress, s.startErr, s.nextAttempt = true, "", nil, time.Time{}
	s.mu.Unlock()
	say := cfg.Provider.Progress
	cfg.Provider.Progress = func(m string) {
		s.mu.Lock()
		s.progress = m
		s.mu.Unlock()
		if say != nil {
			say(m)
		}
	}
	if cfg.Retry.Initial <= 0 {
		p, err := startServed(ctx, cfg)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.serving = false
			return err
		}
		s.p, s.closers = p, onClose
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.mu.Lock()
	s.cancel, s.done, s.closers = cancel, done, onClose
	s.mu.Unlock()
	log := cfg.Provider.Log
	if log == nil {
		log = slog.Default()
	}
	go func() {
		defer close(done)
		s.startLoop(ctx, cfg, log)
	}()
	return nil
}

// startLoop starts the provider until it runs, ctx ends or a start is
// refused for its configuration, waiting cfg.Retry.Delay(failures)
// between attempts (the count starts again with each Start).
func (s *ProviderService) startLoop(ctx context.Context, cfg ServeConfig, log *slog.Logger) {
	for n := 1; ; n++ {
		p, err := startServed(ctx, cfg)
		if err == nil {
			s.mu.Lock()
			s.p, s.startErr, s.nextAttempt = p, nil, time.Time{}
			s.mu.Unlock()
			log.Info("provider serving", "provider", cfg.Provider.Signer.Address().Hex(), "peer", p.P2P.ID().String(),
				"wireguard", p.Exit.Endpoint().String(), "country", p.Location().Country)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrProviderConfig) {
			log.Error("provider: start refused; not retrying: change its options and start it again", "err", err, "attempt", n)
			s.mu.Lock()
			s.startErr, s.nextAttempt = err, time.Time{}
			s.mu.Unlock()
			return
		}
		d := cfg.Retry.Delay(n)
		next := time.Now().Add(d)
		log.Warn("provider: start failed; retrying", "err", err, "attempt", n, "in", d)
		s.mu.Lock()
		s.startErr, s.nextAttempt = err, next
		s.mu.Unlock()
		if retry.Sleep(ctx, d) != nil {
			return
		}
	}
}

// startServed connects the chain and starts the provider once.
func startServed(ctx context.Context, cfg ServeConfig) (*Provider, error) {
	cl, hermes, err := cfg.Chain(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.CheckChainID != nil {
		if err := cfg.CheckChainID(cl.ChainID().Uint64()); err != nil {
			return nil, refused(err)
		}
	}
	pc := cfg.Provider
	pc.Chain, pc.Hermes = cl, hermes
	return StartProvider(ctx, pc)
}

// Provider is the running provider, nil while it starts.
func (s *ProviderService) Provider() *Provider {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p
}

// Serving reports whether s serves (or starts) a provider.
func (s *ProviderService) Serving() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serving
}

// Close stops a pending start and the provider (its sessions end, its
// proposal is withdrawn, auto-settlement at shutdown runs) and empties s,
// so that Start can fill it again. Closing an empty s does nothing.
func (s *ProviderService) Close() error {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	return s.closeLocked()
}

// Stop is Close for a caller that expects a provider (DELETE /service):
// 404 not_found when s serves none.
func (s *ProviderService) Stop() error {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if !s.Serving() {
		return errNoProvider
	}
	return s.closeLocked()
}

// closeLocked closes the provider and resets s; s.stopMu is held. s stays
// serving until the provider closed, so a concurrent Start fails with
// ErrAlreadyServing instead of racing the closing provider for its ports
// and database.
func (s *ProviderService) closeLocked() error {
	s.mu.Lock()
	cancel, done, closers := s.cancel, s.done, s.closers
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	var err error
	if p := s.Provider(); p != nil {
		err = p.Close()
	}
	for _, c := range closers {
		c()
	}
	s.mu.Lock()
	s.serving, s.p, s.cancel, s.done, s.closers, s.progress, s.startErr, s.nextAttempt = false, nil, nil, nil, nil, "", nil, time.Time{}
	s.mu.Unlock()
	return err
}

// codeProviderStarting is the Tequilapi error code while a served provider
// starts.
const codeProviderStarting = "provider_starting"

func (s *ProviderService) api() (EarningsAPI, error) {
	if !s.Serving() {
		return EarningsAPI{}, errNoProvider
	}
	p := s.Provider()
	if p == nil {
		return EarningsAPI{}, s.starting()
	}
	return EarningsAPI{Provider: p}, nil
}

// codeProviderRefused is the Tequilapi error code of a served provider
// whose start was refused for its configuration and is not retried.
const codeProviderRefused = "provider_refused"

// starting is the API's answer while the provider starts: 503
// provider_starting, saying what the start does (its latest progress
// message, e.g. registering the identity), why its latest attempt failed
// and when the next one runs; or 503 provider_refused when the start
// gave up on a refused configuration.
func (s *ProviderService) starting() error {
	s.mu.Lock()
	progress, err, next := s.progress, s.startErr, s.nextAttempt
	s.mu.Unlock()
	if errors.Is(err, ErrProviderConfig) {
		return tequilapi.NewError(http.StatusServiceUnavailable, codeProviderRefused,
			"the provider did not start: "+err.Error()+"; not retrying: stop it (DELETE /service) and start it with other options")
	}
	msg := "the provider is starting"
	if progress != "" {
		msg += ": " + progress
	} else {
		msg += " (waiting for the chain)"
	}
	if err != nil {
		msg += "; last attempt failed: " + err.Error()
		if !next.IsZero() {
			msg += "; next attempt " + attemptTime(next, time.Now())
		}
	}
	return tequilapi.NewError(http.StatusServiceUnavailable, codeProviderStarting, msg)
}

// attemptTime says when next is, seen at now: "in 40s (at 15:04:05
// UTC)", or "now" once it is due.
func attemptTime(next, now time.Time) string {
	d := next.Sub(now)
	if d <= 0 {
		return "now"
	}
	if d >= time.Second {
		d = d.Round(time.Second)
	}
	return "in " + d.String() + " (at " + next.UTC().Format(time.TimeOnly) + " UTC)"
}

// Earnings implements tequilapi.EarningsService.
func (s *ProviderService) Earnings(ctx context.Context) (tequilapi.EarningsDTO, error) {
	a, err := s.api()
	if err != nil {
		return tequilapi.EarningsDTO{}, err
	}
	return a.Earnings(ctx)
}

// Settle implements tequilapi.EarningsService.
func (s *ProviderService) Settle(ctx context.Context) (tequilapi.SettleDTO, error) {
	a, err := s.api()
	if err != nil {
		return tequilapi.SettleDTO{}, err
	}
	return a.Settle(ctx)
}

// ServiceAPI is the Tequilapi of a standalone provider (`myst service
// --service.api`): GET /sessions, GET /earnings, POST /settle and GET
// /settlements of svc.
func ServiceAPI(cfg tequilapi.Config, show func(password string), svc *ProviderService) (*tequilapi.Server, error) {
	srv, err := NewAPI(cfg, show)
	if err != nil {
		return nil, err
	}
	srv.Add(tequilapi.SessionRoutes(HistoryAPI{History: func() *session.History { return svc.Provider().History }}, cfg.Log)...)
	srv.Add(tequilapi.EarningsRoutes(svc, cfg.Log)...)
	srv.Add(tequilapi.SettlementRoutes(svc, cfg.Log)...)
	srv.Add(tequilapi.ServiceCapsRoutes(svc, cfg.Log)...)
	if p := svc.Provider(); p != nil && p.NAT != nil {
		srv.Add(tequilapi.NATRoutes(p.NAT, cfg.Log)...)
	}
	return srv, nil
}

// SettleStored settles the earnings of provider with the hermes promises
// kept in its database under dir (<data-dir>/provider) while no provider
// runs there; it returns the earnings before the settlement.
func SettleStored(ctx context.Context, dir string, c *Chain, hermesURL string, ht HermesTLS, provider common.Address) (Earnings, Settlement, error) {
	return SettleStoredVia(ctx, dir, c, hermesURL, ht, provider, "")
}

// SettleStoredVia is SettleStored settling through the transactor at
// transactorURL ("": from c's own key).
func SettleStoredVia(ctx context.Context, dir string, c *Chain, hermesURL string, ht HermesTLS, provider common.Address, transactorURL string) (Earnings, Settlement, error) {
	relay, err := Relay(c, transactorURL)
	if err != nil {
		return Earnings{}, Settlement{}, err
	}
	db, err := storage.Open(filepath.Join(dir, storage.FileName))
	if err != nil {
		return Earnings{}, Settlement{}, fmt.Errorf("provider database: %w", err)
	}
	defer db.Close()
	st, err := NewSettler(ctx, db, c.Client, c.Hermes, hermesURL, ht, provider)
	if err != nil {
		return Earnings{}, Settlement{}, err
	}
	st.Relay = relay
	e, err := st.Earnings(ctx)
	if err != nil {
		return e, Settlement{}, err
	}
	hist, err := NewSettlementHistory(ctx, db)
	if err != nil {
		return e, Settlement{}, err
	}
	res, err := st.SettleRecorded(ctx, hist, TriggerManual)
	return e, res, err
}
