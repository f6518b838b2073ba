package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// daemonChainFlags configure the daemon's one chain source, shared by the
// account routes and the consumer.
type daemonChainFlags struct {
	rpc, deployment, txKeyFile, hermes string
}

var daemonChain daemonChainFlags

func (f *daemonChainFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.rpc, "chain.rpc", "http://127.0.0.1:8545", "EVM JSON-RPC endpoint of the node (account routes, the consumer's channel)")
	fs.StringVar(&f.deployment, "chain.deployment", "", "contract deployment JSON (default <data-dir>/chain/deployment.json)")
	fs.StringVar(&f.txKeyFile, "chain.transactor-key-file", "", "file with the hex private key paying gas (default on dev deployments: the dev transactor account; without one, the account routes are read-only)")
	fs.StringVar(&f.hermes, "chain.hermes", "", "hermes contract of the identities' channels (default: the deployment's hermes)")
}

// conn returns the lazily-connected chain source the flags describe.
func (f daemonChainFlags) conn(a *app, log *slog.Logger) (*chainConn, error) {
	if f.deployment == "" {
		f.deployment = a.defaultDeploymentPath()
	}
	var hermes common.Address
	if f.hermes != "" {
		h, err := identity.ParseAddress(f.hermes)
		if err != nil {
			return nil, fmt.Errorf("--chain.hermes: %w", err)
		}
		hermes = h
	}
	log.Info("chain connects on first use", "rpc", f.rpc, "deployment", f.deployment)
	return &chainConn{rpc: f.rpc, deployment: f.deployment, txKeyFile: f.txKeyFile, hermes: hermes, log: log}, nil
}

func init() {
	registerDaemonExtension(daemonExtension{Name: "account", Start: startAccountRoutes})
}

// startAccountRoutes adds the /identities/{id}/{account,register,topup,
// settle,beneficiary} routes on the daemon's chain source. The chain is
// connected on first use, so the daemon starts without one; the routes
// answer 503 chain_unavailable until it is reachable.
func startAccountRoutes(_ context.Context, n *daemonNode) (func(context.Context) error, error) {
	n.API.Add(tequilapi.AccountRoutes(n.Identities, n.Chain, n.Log)...)
	return nil, nil
}

// chainConn is a tequilapi.ChainSource that connects lazily, retries after
// a failure and checks the chain still answers before each use.
type chainConn struct {
	rpc, deployment, txKeyFile string
	hermes                     common.Address
	log                        *slog.Logger

	mu     sync.Mutex
	eth    *ethclient.Client
	client *chain.Client
	h      common.Address
}

// chainPingTimeout bounds the connect and liveness checks.
const chainPingTimeout = 5 * time.Second

// Chain implements tequilapi.ChainSource.
func (cc *chainConn) Chain(ctx context.Context) (*chain.Client, common.Address, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, chainPingTimeout)
	defer cancel()
	if cc.client != nil {
		if _, err := cc.eth.BlockNumber(pctx); err != nil {
			return nil, common.Address{}, fmt.Errorf("%w: %s does not answer: %w", tequilapi.ErrChainUnavailable, cc.rpc, err)
		}
		return cc.client, cc.h, nil
	}
	dep, err := chain.LoadDeployment(cc.deployment)
	if err != nil {
		return nil, common.Address{}, fmt.Errorf("%w: %w (start `myst chain dev` or pass --chain.deployment to the daemon)", tequilapi.ErrChainUnavailable, err)
	}
	h := cc.hermes
	if h == (common.Address{}) {
		h = dep.Hermes
	}
	if h == (common.Address{}) {
		return nil, common.Address{}, fmt.Errorf("%w: the deployment has no hermes: pass --chain.hermes to the daemon", tequilapi.ErrChainUnavailable)
	}
	eth, err := ethclient.DialContext(pctx, cc.rpc)
	if err != nil {
		return nil, common.Address{}, fmt.Errorf("%w: dial %s: %w", tequilapi.ErrChainUnavailable, cc.rpc, err)
	}
	var tx *chain.Transactor
	key, err := daemonTransactorKey(cc.txKeyFile, dep)
	if err != nil {
		eth.Close()
		return nil, common.Address{}, fmt.Errorf("%w: %w", tequilapi.ErrChainUnavailable, err)
	}
	if key != nil {
		if tx, err = chain.NewTransactor(pctx, eth, key, cc.log); err != nil {
			eth.Close()
			return nil, common.Address{}, fmt.Errorf("%w: %s: %w", tequilapi.ErrChainUnavailable, cc.rpc, err)
		}
	}
	c, err := chain.NewClient(pctx, eth, dep, tx, cc.log)
	if err != nil {
		eth.Close()
		return nil, common.Address{}, fmt.Errorf("%w: %s: %w", tequilapi.ErrChainUnavailable, cc.rpc, err)
	}
	cc.eth, cc.client, cc.h = eth, c, h
	cc.log.Info("chain connected", "rpc", cc.rpc, "chainId", dep.ChainID, "hermes", h.Hex(), "read_only", tx == nil)
	return c, h, nil
}

func (cc *chainConn) close() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.eth != nil {
		cc.eth.Close()
		cc.eth, cc.client = nil, nil
	}
}

// daemonTransactorKey is the key paying gas: the key file, the dev
// transactor on dev deployments, or nil (read-only).
func daemonTransactorKey(file string, dep chain.Deployment) (*ecdsa.PrivateKey, error) {
	switch {
	case file != "":
		return readKeyFile(file)
	case dep.Faucet:
		return devchain.DevKey(devchain.TransactorAccount), nil
	}
	return nil, nil
}

// daemon returns the running daemon's Tequilapi client when the account
// commands should go through it: a daemon runs for this data dir and no
// --hermes was given (the daemon acts with its own --chain.* settings).
// nil means: act on the chain directly.
func (f *accountFlags) daemon(cmd *cobra.Command) *client.Client {
	if f.hermes != "" {
		return nil
	}
	c, err := theApp.daemonClient(cmd.Context())
	if err != nil {
		return nil
	}
	return c
}

// daemonHandled reports whether a command run through the daemon is
// finished (with err). It is not when the daemon has no chain (or answered
// with one of the fallback codes): the command then acts directly.
func daemonHandled(err error, fallback ...string) (bool, error) {
	for _, code := range append([]string{tequilapi.CodeChainUnavailable}, fallback...) {
		if client.IsCode(err, code) {
			theApp.log.Info("daemon cannot do it; acting on the chain directly", "reason", err)
			return false, nil
		}
	}
	return true, err
}

// daemonIdentity resolves --identity or the daemon's default identity.
func (f *accountFlags) daemonIdentity(ctx context.Context, c *client.Client) (common.Address, error) {
	if f.identity != "" {
		return identity.ParseAddress(f.identity)
	}
	ids, err := c.Identities(ctx)
	if err != nil {
		return common.Address{}, err
	}
	for _, id := range ids {
		if id.Default {
			return identity.ParseAddress(id.ID)
		}
	}
	return common.Address{}, errors.New("no --identity and the daemon has no default identity")
}

// unlockInDaemon unlocks id in the daemon unless it already is.
func (f *accountFlags) unlockInDaemon(cmd *cobra.Command, c *client.Client, id common.Address) error {
	ctx := cmd.Context()
	got, err := c.Identity(ctx, id)
	if err != nil {
		return err
	}
	if got.Unlocked {
		return nil
	}
	pw, err := readPassphrase(cmd, f.passFile, "Passphrase for "+id.Hex(), false)
	if err != nil {
		return err
	}
	_, err = c.Unlock(ctx, id, pw)
	return err
}

// amountOf formats an API amount pair like amount does.
func (f *accountFlags) amountOf(mystDec, wei string) string {
	if f.wei {
		return wei + " wei"
	}
	return mystDec + " MYST"
}

func printTxDTO(w io.Writer, what string, tx tequilapi.TxDTO) {
	fmt.Fprintf(w, "%s: tx %s (block %d, gas %d)\n", what, tx.TxHash, tx.Block, tx.GasUsed)
}

// registerViaDaemon is `myst account register` through the daemon.
func (f *accountFlags) registerViaDaemon(cmd *cobra.Command, c *client.Client, beneficiary, fee string) error {
	ctx := cmd.Context()
	id, err := f.daemonIdentity(ctx, c)
	if err != nil {
		return err
	}
	if err := f.unlockInDaemon(cmd, c, id); err != nil {
		return err
	}
	r, err := c.Register(ctx, id, tequilapi.RegisterRequest{Beneficiary: beneficiary, Fee: fee})
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	printTxDTO(w, "registered "+id.Hex(), r.TxDTO)
	fmt.Fprintf(w, "channel: %s\n", r.Channel)
	return nil
}

// topupViaDaemon is `myst account topup` through the daemon.
func (f *accountFlags) topupViaDaemon(cmd *cobra.Command, c *client.Client, amount string, fromTransactor bool) error {
	ctx := cmd.Context()
	id, err := f.daemonIdentity(ctx, c)
	if err != nil {
		return err
	}
	r, err := c.TopUp(ctx, id, amount, fromTransactor)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	printTxDTO(w, "topped up "+r.Channel+" with "+f.amountOf(r.Amount, r.AmountWei), r.TxDTO)
	fmt.Fprintf(w, "channel balance: %s\n", f.amountOf(r.ChannelBalance, r.ChannelBalanceWei))
	return nil
}

// balanceViaDaemon is `myst account balance` through the daemon.
func (f *accountFlags) balanceViaDaemon(cmd *cobra.Command, c *client.Client) error {
	ctx := cmd.Context()
	id, err := f.daemonIdentity(ctx, c)
	if err != nil {
		return err
	}
	a, err := c.Account(ctx, id)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "identity:     %s\nregistered:   %v\n", a.ID, a.Registered)
	if a.Registered {
		fmt.Fprintf(w, "beneficiary:  %s (%s)\n", a.Beneficiary, f.amountOf(a.BeneficiaryBalance, a.BeneficiaryBalanceWei))
	}
	fmt.Fprintf(w, "wallet:       %s\n", f.amountOf(a.TokenBalance, a.TokenBalanceWei))
	fmt.Fprintf(w, "hermes:       %s\n", a.Hermes)
	fmt.Fprintf(w, "channel:      %s (deployed: %v)\n  balance:    %s\n  settled:    %s\n", a.Channel, a.ChannelDeployed,
		f.amountOf(a.ChannelBalance, a.ChannelBalanceWei), f.amountOf(a.Settled, a.SettledWei))
	if a.ExitUnlockAt != nil {
		fmt.Fprintf(w, "  exit:       pending, can be finalized from %s\n", a.ExitUnlockAt.Format("2006-01-02 15:04:05 MST"))
	}
	fmt.Fprintf(w, "provider channel in hermes:\n  settled:    %s\n  stake:      %s\n",
		f.amountOf(a.ProviderSettled, a.ProviderSettledWei), f.amountOf(a.ProviderStake, a.ProviderStakeWei))
	return nil
}

// beneficiaryViaDaemon is `myst account beneficiary` through the daemon.
func (f *accountFlags) beneficiaryViaDaemon(cmd *cobra.Command, c *client.Client, ben common.Address) error {
	ctx := cmd.Context()
	id, err := f.daemonIdentity(ctx, c)
	if err != nil {
		return err
	}
	if err := f.unlockInDaemon(cmd, c, id); err != nil {
		return err
	}
	r, err := c.SetBeneficiary(ctx, id, ben)
	if err != nil {
		return err
	}
	printTxDTO(cmd.OutOrStdout(), "beneficiary of "+id.Hex()+" is now "+r.Beneficiary, r.TxDTO)
	return nil
}

// settleViaDaemon is `myst account settle` of a provider promise through
// the daemon that holds the provider identity.
func (f *accountFlags) settleViaDaemon(cmd *cobra.Command, c *client.Client, st chain.Settlement) error {
	r, err := c.SettlePromise(cmd.Context(), st.Provider, st)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	printTxDTO(w, "settled provider promise", r.TxDTO)
	fmt.Fprintf(w, "paid %s (before hermes fee) to beneficiary %s; settled now %s of promised %s\n",
		f.amountOf(r.Paid, r.PaidWei), r.Beneficiary, f.amountOf(r.Settled, r.SettledWei), f.amountOf(r.Promised, r.PromisedWei))
	return nil
}
