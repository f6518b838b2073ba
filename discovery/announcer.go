package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p"
)

// withdrawLinger is how long Run waits after publishing the withdrawal.
const withdrawLinger = 500 * time.Millisecond

// When the host's addresses change (AutoNAT found the node private and a
// relay reservation added a circuit address, a port mapping appeared, a
// listener moved), Run re-announces once they have settled for
// addrSettle, and no sooner than addrMinGap after the previous
// announcement: the new addresses are out within seconds instead of at
// the next TTL/3 refresh, and a flapping address set costs at most one
// announcement per addrMinGap.
const (
	addrSettle = time.Second
	addrMinGap = 5 * time.Second
)

// AnnouncerConfig configures an Announcer.
type AnnouncerConfig struct {
	// Proposal is the offer to announce. ProviderID, PeerID, Addrs, Seq,
	// IssuedAt, ExpiresAt and Withdrawn are filled in by the announcer.
	Proposal market.Proposal
	// Signer is the provider identity.
	Signer identity.Signer
	// Host supplies the peer id and current addresses.
	Host host.Host
	// TTL is how long each announcement is valid; 0 means 10m. It is
	// re-announced every TTL/3.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the announcer's log lines; nil means slog.Default().
	Log *slog.Logger
	// Seq persists the last sequence number; each one is saved before it
	// is signed into an announcement. nil keeps it in memory only (tests):
	// a restart with the clock set back could then reuse a sequence number.
	Seq SeqStore
}

// Announcer keeps one provider's proposal alive on the network.
//
// Sequence numbers are the announcement's unix time in milliseconds (or the
// previous one plus one, if larger), so a provider that restarts with the
// same identity still replaces its older proposals. The previous one is
// read from AnnouncerConfig.Seq, so a restart with the clock set back still
// announces a higher number and never signs two proposals with one seq.
type Announcer struct {
	svc *Service
	cfg AnnouncerConfig
	log *slog.Logger

	mu      sync.Mutex
	current market.Proposal // what is announced (template fields)
	lastSeq uint64
	lastExp int64
	// lastAddrs and lastAt are the addresses and time of the latest
	// announcement.
	lastAddrs []string
	lastAt    time.Time
	binding   p2p.Binding
	update    chan struct{}
}

// ErrBadAnnouncer is wrapped by NewAnnouncer's errors for a configuration
// or offer that can never be announced (not for a failure to read the
// sequence file).
var ErrBadAnnouncer = errors.New("discovery: announcer")

// NewAnnouncer returns an announcer publishing through svc; Run starts it.
func NewAnnouncer(svc *Service, cfg AnnouncerConfig) (*Announcer, error) {
	if cfg.Signer == nil || cfg.Host == nil {
		return nil, fmt.Errorf("%w: it needs a signer and a host", ErrBadAnnouncer)
	}
	if cfg.TTL == 0 {
		cfg.TTL = 10 * time.Minute
	}
	if cfg.TTL < 3*time.Second || cfg.TTL > market.MaxTTL {
		return nil, fmt.Errorf("%w: TTL %s out of range [3s, %s]", ErrBadAnnouncer, cfg.TTL, market.MaxTTL)
	}
	// An offer that could never be announced fails here, where the
	// provider starts, not later in Run's goroutine while the provider
	// reports itself serving with no proposal on the network.
	if err := cfg.Proposal.ValidateOffer(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAnnouncer, err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	var last uint64
	if cfg.Seq != nil {
		var err error
		if last, err = cfg.Seq.LoadSeq(); err != nil {
			return nil, err
		}
	}
	return &Announcer{svc: svc, cfg: cfg, log: log, current: cfg.Proposal, lastSeq: last, update: make(chan struct{}, 1)}, nil
}

// Update replaces the announced offer (e.g. a new price) and publishes it
// at once from Run's goroutine.
func (a *Announcer) Update(p market.Proposal) {
	a.mu.Lock()
	a.current = p
	a.mu.Unlock()
	select {
	case a.update <- struct{}{}:
	default:
	}
}

// Run announces now, re-announces every TTL/3 and on Update, and when ctx
// ends publishes a signed withdrawal (bounded by 3s) and returns nil. It
// returns an error only if the very first announcement cannot be built.
func (a *Announcer) Run(ctx context.Context) error {
	if err := a.announce(ctx, false); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before anything was published: nothing to withdraw
		}
		return err
	}
	t := time.NewTicker(a.cfg.TTL / 3)
	defer t.Stop()
	var addrEvents <-chan any
	if sub, err := a.cfg.Host.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated)); err != nil {
		a.log.Warn("discovery: not following address changes", "err", err)
	} else {
		defer sub.Close()
		addrEvents = sub.Out()
	}
	var addrTimer *time.Timer
	var addrDue <-chan time.Time
	defer func() {
		if addrTimer != nil {
			addrTimer.Stop()
		}
	}()
	for {
		select {
		case <-addrEvents:
			if addrDue != nil || !a.addrsChanged() {
				continue
			}
			a.mu.Lock()
			wait := max(addrSettle, addrMinGap-a.cfg.Now().Sub(a.lastAt))
			a.mu.Unlock()
			addrTimer = time.NewTimer(wait)
			addrDue = addrTimer.C
			continue
		case <-addrDue:
			addrDue = nil
			if !a.addrsChanged() {
				continue
			}
			a.log.Info("discovery: addresses changed, re-announcing", "addrs", strings.Join(a.hostAddrs(), " "))
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			defer cancel()
			if err := a.announce(wctx, true); err != nil {
				a.log.Warn("discovery: withdraw proposal", "err", err)
				return nil
			}
			// GossipSub sends asynchronously and has no flush: give the
			// withdrawal a moment on the wire before the host may close.
			select {
			case <-time.After(withdrawLinger):
			case <-wctx.Done():
			}
			return nil
		case <-t.C:
		case <-a.update:
		}
		if err := a.announce(ctx, false); err != nil && ctx.Err() == nil {
			a.log.Warn("discovery: re-announce proposal", "err", err)
		}
	}
}

// Build signs the next announcement without publishing it.
func (a *Announcer) Build(withdraw bool) ([]byte, market.Proposal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	pid := a.cfg.Host.ID()
	if a.binding.PeerID != pid || time.Unix(a.binding.ExpiresAt, 0).Sub(now) < 2*a.cfg.TTL {
		b, err := p2p.NewBinding(a.cfg.Signer, a.current.ChainID, pid, now, max(24*time.Hour, 4*a.cfg.TTL))
		if err != nil {
			return nil, market.Proposal{}, err
		}
		a.binding = b
	}
	p := a.current
	p.Version = p.FormatVersion()
	p.ProviderID = a.cfg.Signer.Address()
	p.PeerID = pid.String()
	p.Addrs = a.hostAddrs()
	p.Seq = max(a.lastSeq+1, uint64(max(now.UnixMilli(), 0)))
	p.IssuedAt = now.Unix()
	p.ExpiresAt = now.Add(a.cfg.TTL).Unix()
	p.Withdrawn = withdraw
	if withdraw && a.lastExp > p.ExpiresAt {
		// The tombstone must outlive the proposal it replaces.
		p.ExpiresAt = a.lastExp
	}
	sp, err := market.Sign(p, a.cfg.Signer)
	if err != nil {
		return nil, market.Proposal{}, err
	}
	ann := Announcement{Proposal: sp, Binding: a.binding}
	raw, err := ann.Encode()
	if err != nil {
		return nil, market.Proposal{}, err
	}
	if len(raw) > MaxMessageSize {
		return nil, market.Proposal{}, fmt.Errorf("discovery: announcement is %d bytes, max %d", len(raw), MaxMessageSize)
	}
	if a.cfg.Seq != nil {
		// Durable before anyone can see it: never sign this seq again.
		if err := a.cfg.Seq.SaveSeq(p.Seq); err != nil {
			return nil, market.Proposal{}, err
		}
	}
	a.lastSeq = p.Seq
	a.lastExp = p.ExpiresAt
	a.lastAddrs, a.lastAt = p.Addrs, now
	return raw, p, nil
}

func (a *Announcer) announce(ctx context.Context, withdraw bool) error {
	raw, p, err := a.Build(withdraw)
	if err != nil {
		return err
	}
	if err := a.svc.publish(ctx, raw, !withdraw); err != nil {
		return err
	}
	a.log.Debug("discovery: announced", "seq", p.Seq, "withdrawn", withdraw, "expires", p.ExpiresAt)
	return nil
}

// hostAddrs are the host's current addresses as a proposal carries them
// (at most market.MaxAddrs, each at most market.MaxAddrLen long).
func (a *Announcer) hostAddrs() []string {
	var out []string
	for _, m := range a.cfg.Host.Addrs() {
		if len(out) == market.MaxAddrs {
			break
		}
		if s := m.String(); len(s) <= market.MaxAddrLen {
			out = append(out, s)
		}
	}
	return out
}

// addrsChanged reports whether the host's addresses differ from the
// latest announcement's.
func (a *Announcer) addrsChanged() bool {
	now := a.hostAddrs()
	a.mu.Lock()
	defer a.mu.Unlock()
	return !slices.Equal(now, a.lastAddrs)
}
