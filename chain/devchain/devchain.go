package devchain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/bindings"
	"github.com/openmyst/openmyst/money"
)

// NumDevAccounts is how many pre-funded dev accounts the genesis holds.
const NumDevAccounts = 10

// Roles of the first dev accounts.
const (
	// DeployerAccount deploys the contracts (its nonces 0 and 1 fix their addresses).
	DeployerAccount = 0
	// HermesAccount is the operator of the dev hermes.
	HermesAccount = 1
	// TransactorAccount pays gas for CLI commands on the dev chain.
	TransactorAccount = 2
)

// DevKey returns dev account i's private key: keccak256("openmyst dev account <i>").
// Public knowledge: dev chains only.
func DevKey(i int) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("openmyst dev account " + strconv.Itoa(i))))
	if err != nil {
		panic(fmt.Sprintf("devchain: dev key %d: %v", i, err)) // cannot happen for these seeds
	}
	return k
}

// DevAddress is dev account i's address.
func DevAddress(i int) common.Address { return crypto.PubkeyToAddress(DevKey(i).PublicKey) }

// Config configures a dev chain.
type Config struct {
	// Host is the JSON-RPC listen host (default 127.0.0.1).
	Host string
	// Port is the JSON-RPC port; 0 picks a free one.
	Port int
	// Period mines a block every period; 0 mines one per transaction.
	Period time.Duration
	// DataDir keeps the chain across restarts; "" keeps it in memory.
	DataDir string
	// ExitTimelock of consumer channels (default 10 minutes).
	ExitTimelock time.Duration
	// FeeNoticeDelay of hermes fee changes (default 1 hour).
	FeeNoticeDelay time.Duration
	// LogRangeLimit makes eth_getLogs refuse ranges of more blocks, as
	// public RPC providers do (go-ethereum's --rpc.rangelimit); 0: no limit.
	LogRangeLimit uint64
	// Log receives progress messages (default slog.Default()).
	Log *slog.Logger
}

// Chain is a running dev chain.
type Chain struct {
	stack *node.Node
	url   string
	dep   chain.Deployment
	log   *slog.Logger
}

var devBalance = new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(1e18))

// Genesis is the dev chain genesis: chain.DevChainConfig (chain id 1337)
// and NumDevAccounts accounts holding 1,000,000 ETH each.
func Genesis() *core.Genesis {
	g := core.DeveloperGenesisBlock(60_000_000, nil)
	g.Config = chain.DevChainConfig()
	for i := range NumDevAccounts {
		g.Alloc[DevAddress(i)] = types.Account{Balance: devBalance}
	}
	for a, acc := range core.SystemContractAllocs() {
		g.Alloc[a] = acc
	}
	return g
}

// Start starts a dev chain and makes sure the contracts and the dev hermes
// are deployed. Close it when done.
func Start(ctx context.Context, cfg Config) (*Chain, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.ExitTimelock == 0 {
		cfg.ExitTimelock = 10 * time.Minute
	}
	if cfg.FeeNoticeDelay == 0 {
		cfg.FeeNoticeDelay = time.Hour
	}
	if cfg.Period < 0 || cfg.Period%time.Second != 0 {
		return nil, fmt.Errorf("devchain: period %s must be zero or whole seconds", cfg.Period)
	}
	nc := node.DefaultConfig
	nc.Name = "myst-devchain"
	nc.DataDir = cfg.DataDir
	nc.P2P = p2p.Config{NoDiscovery: true, MaxPeers: 0, ListenAddr: ""}
	nc.HTTPHost = cfg.Host
	nc.HTTPPort = cfg.Port
	nc.HTTPModules = []string{"eth", "net", "web3", "txpool", "dev"}
	nc.HTTPVirtualHosts = []string{"localhost", "127.0.0.1"}
	nc.HTTPCors = nil
	nc.WSHost, nc.AuthPort = "", 0
	nc.IPCPath = ""
	nc.Logger = nil
	stack, err := node.New(&nc)
	if err != nil {
		return nil, fmt.Errorf("devchain: new node: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = stack.Close()
		}
	}()
	ec := ethconfig.Defaults
	ec.NetworkId = 1337
	ec.Genesis = Genesis()
	ec.SyncMode = ethconfig.FullSync
	ec.TxPool.NoLocals = true
	ec.Miner.GasPrice = big.NewInt(1)
	// No log search index: eth_getLogs scans receipts (the dev chain is
	// small), and reopening a data dir does not load the index's head
	// filter maps, thousands of pebble reads that take tens of seconds
	// under -race (pebble's race build checks every file reference).
	ec.LogNoHistory = true
	backend, err := eth.New(stack, &ec)
	if err != nil {
		return nil, fmt.Errorf("devchain: eth service: %w", err)
	}
	fs := filters.NewFilterSystem(backend.APIBackend, filters.Config{RangeLimit: cfg.LogRangeLimit})
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(fs)}})
	beacon, err := catalyst.NewSimulatedBeacon(uint64(cfg.Period/time.Second), common.Address{}, backend)
	if err != nil {
		return nil, fmt.Errorf("devchain: beacon: %w", err)
	}
	catalyst.RegisterSimulatedBeaconAPIs(stack, beacon)
	stack.RegisterLifecycle(beacon)
	if err := stack.Start(); err != nil {
		return nil, fmt.Errorf("devchain: start node: %w", err)
	}
	c := &Chain{stack: stack, url: stack.HTTPEndpoint(), log: cfg.Log}
	if _, _, err := net.SplitHostPort(trimScheme(c.url)); err != nil {
		return nil, fmt.Errorf("devchain: HTTP endpoint %q: %w", c.url, err)
	}
	if err := c.ensureContracts(ctx, cfg); err != nil {
		return nil, err
	}
	ok = true
	cfg.Log.Info("devchain: running", "rpc", c.url, "chainId", c.dep.ChainID, "registry", c.dep.Registry.Hex(), "token", c.dep.Token.Hex(), "hermes", c.dep.Hermes.Hex())
	return c, nil
}

func trimScheme(u string) string {
	for _, p := range []string{"http://", "https://"} {
		if len(u) > len(p) && u[:len(p)] == p {
			return u[len(p):]
		}
	}
	return u
}

// URL is the JSON-RPC endpoint, e.g. http://127.0.0.1:8545.
func (c *Chain) URL() string { return c.url }

// Deployment is where the contracts live.
func (c *Chain) Deployment() chain.Deployment { return c.dep }

// Close stops the node (and with a data dir, flushes the chain to disk).
func (c *Chain) Close() error {
	if err := c.stack.Close(); err != nil && !errors.Is(err, node.ErrNodeStopped) {
		return fmt.Errorf("devchain: close: %w", err)
	}
	return nil
}

// Dial returns an ethclient connected to the dev chain.
func (c *Chain) Dial(ctx context.Context) (*ethclient.Client, error) {
	cl, err := ethclient.DialContext(ctx, c.url)
	if err != nil {
		return nil, fmt.Errorf("devchain: dial %s: %w", c.url, err)
	}
	return cl, nil
}

// Hermes parameters of the dev hermes.
var (
	DevHermesStake      = money.MYST(1000)
	DevHermesFeeBps     = uint16(100)
	DevMinChannelStake  = money.MYST(100)
	DevMaxChannelStake  = money.MYST(10000)
	devMinHermesStake   = money.MYST(100)
	deployerNonceToken  = uint64(0)
	deployerNonceRegist = uint64(1)
)

// ensureContracts deploys the contracts and the dev hermes unless a
// previous run (same data dir) already did; the deployer's fixed nonces
// make the addresses the same every time.
func (c *Chain) ensureContracts(ctx context.Context, cfg Config) error {
	cl, err := c.Dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	deployer := crypto.PubkeyToAddress(DevKey(DeployerAccount).PublicKey)
	regAddr := crypto.CreateAddress(deployer, deployerNonceRegist)
	code, err := cl.CodeAt(ctx, regAddr, nil)
	if err != nil {
		return fmt.Errorf("devchain: read registry code: %w", err)
	}
	if len(code) > 0 {
		return c.loadExisting(ctx, cl, regAddr, crypto.CreateAddress(deployer, deployerNonceToken))
	}
	dtx, err := chain.NewTransactor(ctx, cl, DevKey(DeployerAccount), c.log)
	if err != nil {
		return err
	}
	dep, err := chain.Deploy(ctx, dtx, chain.DeployParams{
		Faucet: true, MinHermesStake: devMinHermesStake,
		ExitTimelock: cfg.ExitTimelock, FeeNoticeDelay: cfg.FeeNoticeDelay,
	})
	if err != nil {
		return fmt.Errorf("devchain: deploy: %w", err)
	}
	if dep.Registry != regAddr {
		return fmt.Errorf("devchain: registry deployed at %s, expected %s (deployer nonce used elsewhere?)", dep.Registry.Hex(), regAddr.Hex())
	}
	opTx, err := chain.NewTransactor(ctx, cl, DevKey(HermesAccount), c.log)
	if err != nil {
		return err
	}
	dc, err := chain.NewClient(ctx, cl, dep, opTx, c.log)
	if err != nil {
		return err
	}
	if _, err := dc.Mint(ctx, opTx.Address(), DevHermesStake); err != nil {
		return fmt.Errorf("devchain: mint hermes stake: %w", err)
	}
	h, err := chain.RegisterHermes(ctx, opTx, dep, chain.HermesParams{
		Stake: DevHermesStake, FeeBps: DevHermesFeeBps, MinChannelStake: DevMinChannelStake, MaxChannelStake: DevMaxChannelStake,
	})
	if err != nil {
		return fmt.Errorf("devchain: register dev hermes: %w", err)
	}
	dep.Hermes, dep.HermesOperator = h, opTx.Address()
	c.dep = dep
	return nil
}

func (c *Chain) loadExisting(ctx context.Context, cl *ethclient.Client, regAddr, tokenAddr common.Address) error {
	reg, err := bindings.NewRegistry(regAddr, cl)
	if err != nil {
		return fmt.Errorf("devchain: bind registry: %w", err)
	}
	id, err := cl.ChainID(ctx)
	if err != nil {
		return fmt.Errorf("devchain: chain id: %w", err)
	}
	dep := chain.Deployment{ChainID: id.Uint64(), Token: tokenAddr, Registry: regAddr, Faucet: true}
	o := chainCallOpts(ctx)
	if dep.ChannelImplementation, err = reg.ChannelImplementation(o); err != nil {
		return fmt.Errorf("devchain: read channel implementation: %w", err)
	}
	if dep.HermesImplementation, err = reg.HermesImplementation(o); err != nil {
		return fmt.Errorf("devchain: read hermes implementation: %w", err)
	}
	op := DevAddress(HermesAccount)
	h := chain.HermesAddress(regAddr, dep.HermesImplementation, op)
	isH, err := reg.IsHermes(o, h)
	if err != nil {
		return fmt.Errorf("devchain: read hermes: %w", err)
	}
	if !isH {
		return errors.New("devchain: existing chain has contracts but no dev hermes; remove the data dir")
	}
	dep.Hermes, dep.HermesOperator = h, op
	c.dep = dep
	c.log.Info("devchain: reusing contracts from the data dir", "registry", regAddr.Hex())
	return nil
}

func chainCallOpts(ctx context.Context) *bind.CallOpts { return &bind.CallOpts{Context: ctx} }

// PrintInfo writes what runs (`myst chain dev`): the RPC URL, chain id,
// where the deployment was saved (depPath), the contracts and the public
// dev accounts with their roles, and a curl to try.
func (c *Chain) PrintInfo(w io.Writer, depPath string) error {
	dep := c.Deployment()
	fmt.Fprintf(w, "dev chain running\n  rpc:        %s\n  chain id:   %d\n  deployment: %s\n", c.URL(), dep.ChainID, depPath)
	fmt.Fprintf(w, "  token:      %s (MYST, dev faucet open)\n  registry:   %s\n  hermes:     %s (operator %s)\n", dep.Token.Hex(), dep.Registry.Hex(), dep.Hermes.Hex(), dep.HermesOperator.Hex())
	fmt.Fprintf(w, "dev accounts (1,000,000 ETH each; keys are public, dev only):\n")
	for i := range NumDevAccounts {
		role := ""
		switch i {
		case DeployerAccount:
			role = " deployer"
		case HermesAccount:
			role = " hermes operator"
		case TransactorAccount:
			role = " CLI transactor"
		}
		fmt.Fprintf(w, "  #%d %s%s\n", i, DevAddress(i).Hex(), role)
	}
	_, err := fmt.Fprintf(w, "try: curl -s -H 'Content-Type: application/json' -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\",\"params\":[]}' %s\n", c.URL())
	return err
}

// Run runs a dev chain (`myst chain dev`) until ctx ends: it saves the
// deployment to depPath and tells out what runs (PrintInfo).
func Run(ctx context.Context, cfg Config, depPath string, out io.Writer) error {
	dc, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := dc.Close(); err != nil {
			dc.log.Error("dev chain close", "err", err)
		}
	}()
	if err := dc.Deployment().Save(depPath); err != nil {
		return err
	}
	if err := dc.PrintInfo(out, depPath); err != nil {
		return err
	}
	<-ctx.Done()
	dc.log.Info("dev chain stopping")
	return nil
}
