package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/pingpong/paystore"
	"github.com/openmyst/openmyst/storage"
)

// ConsumerConfig configures a consumer node.
type ConsumerConfig struct {
	// DataDir holds the node database and p2p key.
	DataDir string
	// Signer is the consumer identity (registered, channel funded).
	Signer identity.Signer
	// Chain is the chain client (read-only use).
	Chain *chain.Client
	// Hermes is the consumer's hermes.
	Hermes common.Address
	// Bootstrap are the p2p bootstrap peers; ListenAddrs the libp2p
	// listen addresses (default loopback TCP on a free port). Both are
	// ignored when P2P is set.
	Bootstrap   []peer.AddrInfo
	ListenAddrs []string
	// P2P and Discovery, when both set, are the node's running libp2p
	// host and discovery service: the consumer shares them (one host, one
	// peer id per node) and Close leaves them running for their owner.
	// When nil, the consumer starts its own from <DataDir>/p2p.key
	// (standalone mode: devnet, tests).
	P2P       *p2p.Node
	Discovery *discovery.Service
	// Trust, with a shared P2P, is the node's blacklist: overcharges the
	// consumer catches are published through it as fraud proofs.
	Trust *Trust
	// MaxFee is the largest transactor fee per promise accepted.
	MaxFee *big.Int
	// BalanceEvery is how often open connections re-read the channel
	// balance from the chain (zero: consumer.DefaultBalanceEvery); it is
	// also re-read before each connect and before refusing a payment.
	BalanceEvery time.Duration
	// Keepalive and ReadTimeout tune session streams (0: defaults).
	Keepalive   time.Duration
	ReadTimeout time.Duration
	// ICE, when set, offers ICE to providers (see consumer.Config.ICE);
	// nil uses providers' static WireGuard endpoints.
	ICE *ice.Config
	// Log receives events (default slog.Default()).
	Log *slog.Logger

	// ends, when set, counts ended sessions (the daemon's GET /metrics).
	ends *endCounts
}

// Consumer is a running consumer node.
type Consumer struct {
	cfg       ConsumerConfig
	DB        *storage.DB
	History   *session.History
	Channel   *paystore.Channel
	P2P       *p2p.Node
	Discovery *discovery.Service
	// Trust is the blacklist (the node's, or this consumer's own).
	Trust    *Trust
	Sessions *consumer.Manager
	// ChannelAddress is the consumer's channel contract.
	ChannelAddress common.Address
	// ownP2P is whether P2P and Discovery were started here (and are
	// closed by Close).
	ownP2P bool

	failMu sync.Mutex
	failed map[common.Address]time.Time // providers that failed us recently
}

// RecentFailure is how long a provider that failed this consumer (could
// not be reached, refused, no handshake, stalled, overcharged) is avoided
// when another provider matches, like Mysterium's failed-node exclusion.
const RecentFailure = 10 * time.Minute

// maxFailed bounds the remembered failures.
const maxFailed = 1024

// onResult records failures, then passes the result on to report.
func (c *Consumer) onResult(report func(consumer.Result)) func(consumer.Result) {
	return func(r consumer.Result) {
		if r.Stage == consumer.StageSession && c.cfg.ends != nil {
			c.cfg.ends.add(r.Err)
		}
		if r.Err != nil {
			now := time.Now()
			c.failMu.Lock()
			if c.failed == nil {
				c.failed = map[common.Address]time.Time{}
			}
			if len(c.failed) >= maxFailed {
				for k, at := range c.failed {
					if now.Sub(at) > RecentFailure {
						delete(c.failed, k)
					}
				}
			}
			if len(c.failed) < maxFailed {
				c.failed[r.Proposal.ProviderID] = now
			}
			c.failMu.Unlock()
		}
		if report != nil {
			report(r)
		}
	}
}

// avoidRecent returns avoid plus the providers that failed this consumer
// within RecentFailure.
func (c *Consumer) avoidRecent(avoid map[common.Address]bool) map[common.Address]bool {
	out := make(map[common.Address]bool, len(avoid))
	for k, v := range avoid {
		out[k] = v
	}
	now := time.Now()
	c.failMu.Lock()
	defer c.failMu.Unlock()
	for k, at := range c.failed {
		if now.Sub(at) <= RecentFailure {
			out[k] = true
		}
	}
	return out
}

// StartConsumer opens the node database and channel ledger (its balance
// read from the chain) and joins the p2p network.
func StartConsumer(ctx context.Context, cfg ConsumerConfig) (_ *Consumer, err error) {
	if cfg.Signer == nil || cfg.Chain == nil || cfg.DataDir == "" {
		return nil, errors.New("node: consumer needs a signer, a chain and a data dir")
	}
	if cfg.ICE, err = iceForChain(cfg.Chain.ChainID().Uint64(), cfg.ICE); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.ListenAddrs == nil {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	log := cfg.Log.With("consumer", cfg.Signer.Address().Hex())
	c := &Consumer{cfg: cfg}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if c.DB, err = storage.Open(filepath.Join(cfg.DataDir, storage.FileName)); err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = c.DB.Close() })
	c.History = session.NewHistory(c.DB)
	chainID := cfg.Chain.ChainID()
	c.ChannelAddress = cfg.Chain.ChannelAddress(cfg.Signer.Address(), cfg.Hermes)
	limit, err := channelLimit(ctx, cfg.Chain, c.ChannelAddress)
	if err != nil {
		return nil, err
	}
	if c.Channel, err = paystore.New(c.DB).Channel(chainID, payments.ConsumerChannelID(c.ChannelAddress), limit); err != nil {
		return nil, err
	}
	if (cfg.P2P == nil) != (cfg.Discovery == nil) {
		return nil, errors.New("node: consumer needs both a shared p2p node and its discovery service, or neither")
	}
	if cfg.P2P != nil {
		c.P2P, c.Discovery, c.Trust = cfg.P2P, cfg.Discovery, cfg.Trust
	} else if err := c.startP2P(ctx, chainID.Uint64(), log, &closers); err != nil {
		return nil, err
	}
	if c.Sessions, err = consumer.New(consumer.Config{
		Signer: cfg.Signer, ChainID: chainID, Hermes: cfg.Hermes, Host: c.P2P.Host, Finder: c.P2P, Channel: c.Channel,
		Balance: c, BalanceEvery: cfg.BalanceEvery,
		MaxFee: cfg.MaxFee, History: c.History, Keepalive: cfg.Keepalive, ReadTimeout: cfg.ReadTimeout, Proxy: UserspaceProxy, ICE: cfg.ICE, Log: log,
		SignedProposal: signedProposal(c.Discovery), OnOvercharge: c.Trust.ReportOvercharge,
		OnResult: c.onResult(c.Trust.Reporter(cfg.Signer, chainID.Uint64(), cfg.Hermes)),
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// startP2P starts the consumer's own libp2p host and discovery service.
func (c *Consumer) startP2P(ctx context.Context, chainID uint64, log *slog.Logger, closers *[]func()) (err error) {
	cfg := c.cfg
	key, err := p2p.LoadOrCreateKey(filepath.Join(cfg.DataDir, p2p.KeyFile))
	if err != nil {
		return err
	}
	if c.P2P, err = p2p.New(p2p.Config{Key: key, ListenAddrs: cfg.ListenAddrs, Bootstrap: cfg.Bootstrap, DHTMode: p2p.DHTClient, Log: log}); err != nil {
		return err
	}
	*closers = append(*closers, func() { _ = c.P2P.Close() })
	if c.Discovery, c.Trust, err = startDiscovery(c.P2P.Host, discovery.Config{ValidatorConfig: discovery.ValidatorConfig{ChainID: chainID}, HeartbeatInterval: GossipHeartbeat(chainID), Log: log}, cfg.DataDir,
		newChainBacking(func(context.Context) (*chain.Client, error) { return cfg.Chain, nil })); err != nil {
		return err
	}
	*closers = append(*closers, func() { _ = c.Trust.Close(); _ = c.Discovery.Close() })
	c.ownP2P = true
	if len(cfg.Bootstrap) > 0 {
		if err := c.P2P.Bootstrap(ctx); err != nil {
			return err
		}
	}
	return nil
}

// channelLimit is the most a channel's promises may total: its balance
// plus what was already settled from it.
func channelLimit(ctx context.Context, c *chain.Client, channel common.Address) (*big.Int, error) {
	st, err := c.ChannelState(ctx, channel)
	if err != nil {
		return nil, fmt.Errorf("node: read channel %s: %w", channel.Hex(), err)
	}
	limit := new(big.Int)
	if st.Balance != nil {
		limit.Add(limit, st.Balance)
	}
	if st.Settled != nil {
		limit.Add(limit, st.Settled)
	}
	return limit, nil
}

// Address is the consumer identity.
func (c *Consumer) Address() common.Address { return c.cfg.Signer.Address() }

// Proposals pulls the current proposals from connected peers and returns
// the cached ones matching f.
func (c *Consumer) Proposals(ctx context.Context, f market.Filter) []market.Proposal {
	c.Discovery.SyncConnected(ctx, 3)
	return c.Discovery.Cache().Query(f)
}

// WaitProposals waits until at least n proposals match f.
func (c *Consumer) WaitProposals(ctx context.Context, f market.Filter, n int) ([]market.Proposal, error) {
	for {
		if ps := c.Discovery.Cache().Query(f); len(ps) >= n {
			return ps, nil
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		c.Discovery.SyncConnected(sctx, 3)
		cancel()
		select {
		case <-ctx.Done():
			return c.Discovery.Cache().Query(f), fmt.Errorf("node: waiting for %d proposals: %w", n, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Connect picks the best proposal matching f and connects to it; a full
// provider (RefusedFull) makes it try the next best, up to
// DefaultFullTries providers.
func (c *Consumer) Connect(ctx context.Context, f market.Filter, o consumer.Options) (*consumer.Connection, error) {
	if f.Sort == "" {
		f.Sort = market.SortQuality // the best providers first
	}
	conn, _, err := dialFirst(ctx, DefaultFullTries, func(ctx context.Context, avoid map[common.Address]bool) (*consumer.Connection, common.Address, error) {
		p, err := pickReconnect(admitted(c.Discovery.Cache().Query(f), c.Address()), f, nil, c.avoidRecent(avoid))
		if err != nil {
			return nil, common.Address{}, err
		}
		conn, err := c.Sessions.Connect(ctx, p, o)
		return conn, p.ProviderID, err
	})
	return conn, err
}

// RefreshBalance re-reads the channel balance (after a top-up) into the
// ledger; the session manager calls it (consumer.BalanceSource).
func (c *Consumer) RefreshBalance(ctx context.Context) error {
	limit, err := channelLimit(ctx, c.cfg.Chain, c.ChannelAddress)
	if err != nil {
		return err
	}
	return c.Channel.SetBalance(limit)
}

// Close leaves the network (unless the p2p node is shared) and closes the
// database. Open connections should be disconnected first.
func (c *Consumer) Close() error {
	if c.ownP2P {
		_ = c.Trust.Close()
		_ = c.Discovery.Close()
		_ = c.P2P.Close()
	}
	return c.DB.Close()
}
