package node

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/tequilapi"
)

// TxMode says whether a chain connection loads a key that pays gas.
type TxMode int

const (
	// TxNone: read-only, no key is loaded.
	TxNone TxMode = iota
	// TxOptional: the key file, else the dev transactor on a dev
	// deployment, else read-only.
	TxOptional
	// TxRequired: the key file, else the dev transactor on a dev
	// deployment, else an error.
	TxRequired
)

// ChainConfig locates a chain and its contracts.
type ChainConfig struct {
	// RPC is the EVM JSON-RPC endpoint, or several separated by commas
	// (the first is used; the others take over when it fails, see
	// chain.DialRPC).
	RPC string
	// Deployment is the contract deployment JSON file.
	Deployment string
	// Deployed is the contract deployment itself (from a network
	// definition); when set, Deployment is not read.
	Deployed *chain.Deployment
	// TransactorKeyFile holds the hex private key paying gas (optional).
	TransactorKeyFile string
	// Hermes is the hermes contract of the channels (zero: the
	// deployment's hermes).
	Hermes common.Address
	// Tx says whether to load a key paying gas.
	Tx TxMode
	// PendingDir, when set, keeps the pending transactions of the key
	// paying gas in PendingPath's file there, shared with the other
	// processes of the data dir (chain.PendingFileLock), and OpenChain
	// resumes what they hold in the background; empty: in memory only.
	PendingDir string
	// Log receives events (default slog.Default()).
	Log *slog.Logger
}

// Chain is an open chain client and the hermes it acts with.
type Chain struct {
	// Client is the chain client.
	Client *chain.Client
	// Hermes is the hermes contract of the identities' channels.
	Hermes     common.Address
	eth        *ethclient.Client
	stopResume func()
}

// Close stops resuming pending transactions (they stay stored) and
// disconnects from the RPC endpoint.
func (c *Chain) Close() {
	if c.stopResume != nil {
		c.stopResume()
	}
	c.eth.Close()
}

// OpenChain loads the deployment, dials the RPC endpoint and, per cfg.Tx,
// loads the key paying gas.
func OpenChain(ctx context.Context, cfg ChainConfig) (*Chain, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	dep, err := cfg.deployment()
	if err != nil {
		return nil, err
	}
	h := cfg.Hermes
	if h == (common.Address{}) {
		h = dep.Hermes
	}
	if h == (common.Address{}) {
		return nil, errors.New("no hermes: the deployment has none, name the hermes contract")
	}
	var key *ecdsa.PrivateKey
	if cfg.Tx != TxNone {
		if key, err = TransactorKey(cfg.TransactorKeyFile, dep); err != nil {
			return nil, err
		}
		if key == nil && cfg.Tx == TxRequired {
			return nil, errors.New("not a dev deployment: pass --chain.transactor-key-file with the key that pays gas")
		}
	}
	eth, err := chain.DialRPC(ctx, chain.RPCConfig{URLs: chain.SplitRPCURLs(cfg.RPC), ChainID: dep.ChainID, Log: log})
	if err != nil {
		return nil, err
	}
	var tx *chain.Transactor
	if key != nil {
		if tx, err = chain.NewTransactor(ctx, eth, key, log); err != nil {
			eth.Close()
			return nil, fmt.Errorf("%s: %w", cfg.rpcNames(), err)
		}
		if cfg.PendingDir != "" {
			tx.SetPendingLock(chain.PendingFileLock(PendingPath(cfg.PendingDir, tx.Address()), log))
		}
	}
	c, err := chain.NewClient(ctx, eth, dep, tx, log)
	if err != nil {
		eth.Close()
		return nil, fmt.Errorf("%s: %w", cfg.rpcNames(), err)
	}
	ch := &Chain{Client: c, Hermes: h, eth: eth}
	if tx != nil && cfg.PendingDir != "" && hasPendingFile(PendingPath(cfg.PendingDir, tx.Address())) {
		// What an earlier run (this process's or another's on the data
		// dir) left pending is finished now, not only at the next send.
		// Without the file nothing can be pending: no need to create it
		// and take its lock at every start.
		rctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			ResumePending(rctx, tx, "chain", log)
		}()
		ch.stopResume = func() { cancel(); <-done }
	}
	return ch, nil
}

// PendingPath is the file in dir holding the pending transactions of the
// account from (one file per key: the processes of a data dir sending
// from it take turns on it).
func PendingPath(dir string, from common.Address) string {
	return filepath.Join(dir, "pending-"+from.Hex()+".db")
}

// hasPendingFile says whether the PendingPath file path exists.
func hasPendingFile(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// hasPendingFiles says whether dir holds a PendingPath file.
func hasPendingFiles(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "pending-0x*.db"))
	return len(m) > 0
}

// ResumePending finishes the transactions tx's store holds from an earlier
// run (chain.Transactor.Resume) and logs what came of them; what is the
// sender's role in the logs.
func ResumePending(ctx context.Context, tx *chain.Transactor, what string, log *slog.Logger) {
	rs, err := tx.Resume(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Error(what+": resume pending transactions", "err", err)
	case len(rs) > 0:
		log.Info(what+": resumed pending transactions", "mined", len(rs))
	}
}

// rpcNames is cfg.RPC without paths or queries (they may hold API keys).
func (cfg ChainConfig) rpcNames() string {
	urls := chain.SplitRPCURLs(cfg.RPC)
	for i, u := range urls {
		urls[i] = chain.RedactURL(u)
	}
	return strings.Join(urls, ",")
}

// deployment is cfg.Deployed, else the Deployment file.
func (cfg ChainConfig) deployment() (chain.Deployment, error) {
	if cfg.Deployed != nil {
		if err := cfg.Deployed.Validate(); err != nil {
			return chain.Deployment{}, err
		}
		return *cfg.Deployed, nil
	}
	dep, err := chain.LoadDeployment(cfg.Deployment)
	if err != nil {
		return dep, fmt.Errorf("%w (start `myst chain dev`, pass --chain.deployment or --network)", err)
	}
	return dep, nil
}

// TransactorKey is the key paying gas: the key file, the dev transactor on
// dev deployments, or nil (read-only). The dev keys are public: a
// deployment asking for them (faucet) on a chain that is not a dev chain
// (chain.IsDevChainID) is refused.
func TransactorKey(file string, dep chain.Deployment) (*ecdsa.PrivateKey, error) {
	switch {
	case file != "":
		return ReadKeyFile(file)
	case dep.Faucet:
		if err := DevKeysAllowed(dep); err != nil {
			return nil, err
		}
		return devchain.DevKey(devchain.TransactorAccount), nil
	}
	return nil, nil
}

// ErrDevKeysRefused is returned when the public dev keys would sign for a
// chain that is not a dev chain.
var ErrDevKeysRefused = errors.New("refusing the public dev keys")

// DevKeysAllowed says whether the public dev keys (devchain.DevKey) may
// sign for dep: only on a dev deployment (faucet) of a dev chain.
func DevKeysAllowed(dep chain.Deployment) error {
	if !dep.Faucet {
		return fmt.Errorf("%w: the deployment on chain %d is not a dev deployment (no faucet); pass a key of your own", ErrDevKeysRefused, dep.ChainID)
	}
	if !chain.IsDevChainID(dep.ChainID) {
		return fmt.Errorf("%w: chain %d is not a dev chain (%v), whatever its deployment says; pass a key of your own (--chain.transactor-key-file, --hermes.operator)", ErrDevKeysRefused, dep.ChainID, chain.DevChainIDs)
	}
	return nil
}

// ReadKeyFile reads a hex private key (the account paying gas). The key is
// never printed, not even in errors.
func ReadKeyFile(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read transactor key: %w", err)
	}
	k, err := crypto.HexToECDSA(strings.TrimPrefix(strings.TrimSpace(string(data)), "0x"))
	if err != nil {
		return nil, fmt.Errorf("transactor key file %s: not a hex private key", path)
	}
	return k, nil
}

// ChainConn is a node's one chain source: it connects on first use
// (TxOptional: read-only without a key), retries after a failure and
// checks the chain still answers before each use, so a node starts
// without a chain. It implements tequilapi.ChainSource.
type ChainConn struct {
	cfg ChainConfig

	mu sync.Mutex
	c  *Chain
}

// NewChainConn returns the lazily-connected chain source cfg describes
// (cfg.Tx is ignored: a key is used when there is one).
func NewChainConn(cfg ChainConfig) *ChainConn {
	cfg.Tx = TxOptional
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Log.Info("chain connects on first use", "rpc", cfg.rpcNames(), "deployment", cfg.Deployment)
	return &ChainConn{cfg: cfg}
}

// chainPingTimeout bounds the connect and liveness checks.
const chainPingTimeout = 5 * time.Second

// Chain implements tequilapi.ChainSource (see Client).
func (cc *ChainConn) Chain(ctx context.Context) (tequilapi.AccountChain, common.Address, error) {
	c, h, err := cc.Client(ctx)
	if err != nil {
		return nil, h, err
	}
	return c, h, nil
}

// Client returns the chain client and hermes, connecting if needed. Errors
// wrap tequilapi.ErrChainUnavailable.
func (cc *ChainConn) Client(ctx context.Context) (*chain.Client, common.Address, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, chainPingTimeout)
	defer cancel()
	if cc.c != nil {
		if _, err := cc.c.eth.BlockNumber(pctx); err != nil {
			return nil, common.Address{}, fmt.Errorf("%w: %s does not answer: %w", tequilapi.ErrChainUnavailable, cc.cfg.rpcNames(), err)
		}
		return cc.c.Client, cc.c.Hermes, nil
	}
	c, err := OpenChain(pctx, cc.cfg)
	if err != nil {
		return nil, common.Address{}, fmt.Errorf("%w: %w", tequilapi.ErrChainUnavailable, err)
	}
	cc.c = c
	cc.cfg.Log.Info("chain connected", "rpc", cc.cfg.rpcNames(), "chainId", c.Client.Deployment().ChainID, "hermes", c.Hermes.Hex(), "read_only", c.Client.Transactor() == nil)
	return c.Client, c.Hermes, nil
}

// Close disconnects; a later Chain connects again.
func (cc *ChainConn) Close() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.c != nil {
		cc.c.Close()
		cc.c = nil
	}
}

// DeployConfig configures DeployContracts.
type DeployConfig struct {
	// RPC is the EVM JSON-RPC endpoint (or several, comma-separated, as
	// in ChainConfig); KeyFile holds the deployer's hex
	// private key (it pays gas).
	RPC, KeyFile string
	// Out is the deployment JSON to write; its progress is kept beside it
	// (DeployProgressPath).
	Out string
	// PendingDir keeps the deployer's pending transactions in
	// PendingPath's file there, shared with the other processes of the
	// data dir sending from that key (chain.PendingFileLock).
	PendingDir string
	// Params are the contracts' parameters.
	Params chain.DeployParams
	// Supply and MinHermesStake (MYST decimals) and Holder (0x address),
	// when set, set Params' fields of those names.
	Supply, MinHermesStake, Holder string
	// Log receives events (default slog.Default()).
	Log *slog.Logger
}

// DeployResult is what DeployContracts did.
type DeployResult struct {
	// Deployment is the deployment (written to Out).
	Deployment chain.Deployment
	// Already says the deployment was complete before this run: nothing
	// was sent.
	Already bool
	// Progress is the progress file.
	Progress string
}

// DeployProgressPath is the progress file of the deployment written to
// out (chain.DeployResumable).
func DeployProgressPath(out string) string { return out + ".progress" }

// ErrDeploymentExists is returned when the deployment file to write holds
// a deployment no progress file describes.
var ErrDeploymentExists = errors.New("the deployment file exists")

// DeployContracts deploys the MYST token and the registry to any EVM
// chain and writes the deployment JSON to cfg.Out. Each step is recorded
// in the progress file beside it and the deployer's transactions are kept
// in the data dir's pending file, so a rerun after a crash finishes the
// pending transaction under its nonce and continues at the next step; a
// rerun of a complete deployment sends nothing (Already). An Out file
// without a progress file (another deployment) is never overwritten.
func DeployContracts(ctx context.Context, cfg DeployConfig) (DeployResult, error) {
	if err := cfg.parse(); err != nil {
		return DeployResult{}, err
	}
	if cfg.KeyFile == "" {
		return DeployResult{}, errors.New("--chain.transactor-key-file is required (the deployer pays gas)")
	}
	res := DeployResult{Progress: DeployProgressPath(cfg.Out)}
	_, outErr := os.Stat(cfg.Out)
	if _, err := os.Stat(res.Progress); outErr == nil && errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("%w: %s holds a deployment this command did not start (no %s): pass another --out, or remove it to deploy a new set", ErrDeploymentExists, cfg.Out, res.Progress)
	}
	key, err := ReadKeyFile(cfg.KeyFile)
	if err != nil {
		return res, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	eth, err := chain.DialRPC(ctx, chain.RPCConfig{URLs: chain.SplitRPCURLs(cfg.RPC), Log: log})
	if err != nil {
		return res, err
	}
	defer eth.Close()
	id, err := eth.ChainID(ctx)
	if err != nil {
		return res, fmt.Errorf("%s: chain id: %w", chain.RedactURL(chain.SplitRPCURLs(cfg.RPC)[0]), err)
	}
	if err := checkFaucetDeploy(id.Uint64(), cfg.Params.Faucet); err != nil {
		return res, err
	}
	tx, err := chain.NewTransactor(ctx, eth, key, log)
	if err != nil {
		return res, err
	}
	if cfg.PendingDir != "" {
		tx.SetPendingLock(chain.PendingFileLock(PendingPath(cfg.PendingDir, tx.Address()), log))
	}
	dep, done, err := chain.DeployResumable(ctx, tx, cfg.Params, res.Progress, func(s chain.DeployStep) {
		log.Info("deploy: step mined", "step", s.Name, "address", s.Address.Hex(), "tx", s.Tx.Hex(), "block", s.Block)
	})
	res.Deployment = dep
	if err != nil {
		return res, err
	}
	if _, err := os.Stat(cfg.Out); done && err == nil { // a concurrent run may have written it meanwhile
		// Complete before this run: the file is left as it is (a hermes
		// may have been added to it) if it names these contracts.
		prev, err := chain.LoadDeployment(cfg.Out)
		if err != nil {
			return res, err
		}
		if prev.ChainID != dep.ChainID || prev.Token != dep.Token || prev.Registry != dep.Registry {
			return res, fmt.Errorf("%w: %s names other contracts than its progress file %s records", ErrDeploymentExists, cfg.Out, res.Progress)
		}
		res.Already = true
		return res, nil
	}
	return res, dep.Save(cfg.Out)
}

// parse sets Params from Supply, MinHermesStake and Holder.
func (cfg *DeployConfig) parse() error {
	var err error
	p := &cfg.Params
	if cfg.Supply != "" {
		if p.Supply, err = money.ParseMYST(cfg.Supply); err != nil {
			return fmt.Errorf("--supply: %w", err)
		}
	}
	if cfg.MinHermesStake != "" {
		if p.MinHermesStake, err = money.ParseMYST(cfg.MinHermesStake); err != nil {
			return fmt.Errorf("--min-hermes-stake: %w", err)
		}
	}
	if cfg.Holder != "" {
		if p.Holder, err = identity.ParseAddress(cfg.Holder); err != nil {
			return fmt.Errorf("--holder: %w", err)
		}
	}
	return nil
}

// devHeartbeat is the GossipSub heartbeat on dev chains: proposals spread
// within a fraction of a second, so devnets and tests need no waiting.
const devHeartbeat = 200 * time.Millisecond

// GossipHeartbeat is the GossipSub heartbeat for the proposals of chain
// chainID: devHeartbeat on dev chains (chain.IsDevChainID), else 0, which
// keeps libp2p's production default (1 s) and its bandwidth.
func GossipHeartbeat(chainID uint64) time.Duration {
	if chain.IsDevChainID(chainID) {
		return devHeartbeat
	}
	return 0
}
