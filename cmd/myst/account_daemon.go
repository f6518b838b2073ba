package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// daemonChainFlags configure the daemon's one chain source, shared by the
// account routes and the consumer.
type daemonChainFlags struct {
	rpc, deployment, txKeyFile, hermes string
}

func (f *daemonChainFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.rpc, "chain.rpc", "http://127.0.0.1:8545", "EVM JSON-RPC endpoint of the node (account routes, the consumer's channel)")
	fs.StringVar(&f.deployment, "chain.deployment", "", "contract deployment JSON (default <data-dir>/chain/deployment.json)")
	fs.StringVar(&f.txKeyFile, "chain.transactor-key-file", "", "file with the hex private key paying gas (default on dev deployments: the dev transactor account; without one, the account routes are read-only)")
	fs.StringVar(&f.hermes, "chain.hermes", "", "hermes contract of the identities' channels (default: the deployment's hermes)")
}

// config is the chain source the flags describe.
func (f daemonChainFlags) config(a *app) (node.ChainConfig, error) {
	cfg := node.ChainConfig{RPC: f.rpc, Deployment: f.deployment, TransactorKeyFile: f.txKeyFile, Log: a.log}
	if cfg.Deployment == "" {
		cfg.Deployment = a.defaultDeploymentPath()
	}
	if f.hermes != "" {
		h, err := identity.ParseAddress(f.hermes)
		if err != nil {
			return cfg, fmt.Errorf("--chain.hermes: %w", err)
		}
		cfg.Hermes = h
	}
	return cfg, nil
}

// daemon returns the running daemon's Tequilapi client when the account
// commands should go through it: a daemon runs for this data dir and no
// --hermes was given (the daemon acts with its own --chain.* settings).
// nil means: act on the chain directly.
func (f *accountFlags) daemon(cmd *cobra.Command) *client.Client {
	if f.hermes != "" {
		return nil
	}
	c, err := f.app.daemonClient(cmd.Context())
	if err != nil {
		return nil
	}
	return c
}

// daemonHandled reports whether a command run through the daemon is
// finished (with err). It is not when the daemon has no chain (or answered
// with one of the fallback codes): the command then acts directly.
func (f *accountFlags) daemonHandled(err error, fallback ...string) (bool, error) {
	for _, code := range append([]string{tequilapi.CodeChainUnavailable}, fallback...) {
		if client.IsCode(err, code) {
			f.app.log.Info("daemon cannot do it; acting on the chain directly", "reason", err)
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
	f.printAccount(cmd.OutOrStdout(), a)
	return nil
}

// printAccount prints an identity's on-chain account.
func (f *accountFlags) printAccount(w io.Writer, a tequilapi.AccountDTO) {
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
