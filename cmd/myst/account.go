package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tequilapi"
)

// accountFlags are shared by the account subcommands.
type accountFlags struct {
	app *app
	node.AccountFlags
	amounts tequilapi.Amounts
}

// registerChain declares the --chain.* flags of a command acting on the
// chain directly.
func (f *accountFlags) registerChain(fs *pflag.FlagSet) { registerChain(fs, &f.ChainFlags, "") }

// registerChain declares --chain.rpc, --chain.deployment and
// --chain.transactor-key-file into c (keyNote ends the key file's help).
func registerChain(fs *pflag.FlagSet, c *node.ChainFlags, keyNote string) {
	fs.Var(network.RPCFlag(&c.RPC, "http://127.0.0.1:8545"), "chain.rpc", "EVM JSON-RPC endpoint; repeat it (or separate by commas) for RPCs to fail over to")
	fs.StringVar(&c.Deployment, "chain.deployment", "", "contract deployment JSON (default <data-dir>/chain/deployment.json)")
	fs.StringVar(&c.TransactorKeyFile, "chain.transactor-key-file", "", "file with the hex private key paying gas (default on dev deployments: the dev transactor account"+keyNote+")")
}

// registerIdentity declares --identity (help: whose) and --passphrase-file.
func (f *accountFlags) registerIdentity(fs *pflag.FlagSet, whose string) {
	fs.StringVar(&f.Identity, "identity", "", whose+" (default: the default identity)")
	fs.StringVar(&f.PassphraseFile, "passphrase-file", "", "file holding the identity passphrase (or $MYST_PASSPHRASE)")
}

func (f *accountFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	f.registerChain(pf)
	f.registerIdentity(pf, "identity address to act as")
	pf.StringVar(&f.Hermes, "hermes", "", "hermes contract (default: the deployment's hermes)")
	pf.BoolVar(&f.amounts.Wei, "wei", false, "show amounts in wei instead of MYST")
	pf.StringVar(&f.TransactorURL, "transactor", "", "transactor API relaying register, beneficiary and redeem, and signing vouchers for (docs/transactor.md): the identity pays no gas")
}

func newAccountCmd(a *app) *cobra.Command {
	f := &accountFlags{app: a}
	cmd := groupCmd("account", "On-chain account: register, top up, balance, settle, beneficiary, exit", `Acts on chain for an identity (--identity, default the keystore's default
identity). Amounts are MYST with up to 18 decimals ("1.5"); --wei prints raw
wei. Gas is paid by --chain.transactor-key-file, or on dev deployments by
the dev transactor account, so identities never need ETH.

When a daemon runs for the data dir (and no --hermes is given), register,
topup, balance, beneficiary and settle of a provider promise go through its
Tequilapi and act on the daemon's chain (its --chain.* flags), with the
identity unlocked in the daemon; if the daemon has no chain they act on
the chain directly.`,
		&cobra.Command{Use: "redeem CODE", Args: cobra.ExactArgs(1), Short: "Redeem a referral voucher through --transactor: free registration and a starter top-up", RunE: func(cmd *cobra.Command, args []string) error { return f.viaRelay(cmd, "redeem", args[0]) }},
		newAccountRegisterCmd(f), newAccountTopupCmd(f), newAccountBalanceCmd(f),
		newAccountSettleCmd(f), newAccountBeneficiaryCmd(f), newAccountPromiseCmd(f), newAccountExitCmd(f), newAccountVoucherCmd(f))
	f.register(cmd)
	return cmd
}

func newAccountRegisterCmd(f *accountFlags) *cobra.Command {
	var req tequilapi.RegisterRequest
	cmd := leafCmd("register", "Register the identity with the hermes and create its channel", func(cmd *cobra.Command) error {
		if _, err := money.ParseMYST(req.Fee); err != nil {
			return fmt.Errorf("--fee: %w", err)
		}
		if _, err := identity.ParseAddress(req.Beneficiary); req.Beneficiary != "" && err != nil {
			return fmt.Errorf("--beneficiary: %w", err)
		}
		if f.TransactorURL != "" {
			return f.viaRelay(cmd, "register", "")
		}
		return f.local(cmd).WithAccounts(cmd.Context(), f.AccountFlags, true, true, func(api node.AccountAPI, id common.Address) error {
			r, err := api.Register(cmd.Context(), id, req)
			if err != nil {
				return err
			}
			return r.Print(cmd.OutOrStdout())
		})
	})
	cmd.Flags().StringVar(&req.Beneficiary, "beneficiary", "", "payout address (default: the identity)")
	cmd.Flags().StringVar(&req.Fee, "fee", "0", "transactor fee in MYST, paid from the pre-funded channel")
	return cmd
}

func newAccountTopupCmd(f *accountFlags) *cobra.Command {
	var fromTransactor bool
	cmd := &cobra.Command{
		Use:   "topup AMOUNT",
		Short: "Top up the identity's channel (works before registration)",
		Long: `Sends AMOUNT MYST to the identity's channel address. On dev deployments
the MYST comes from the dev faucet; otherwise (or with --from-transactor) it
is transferred from the transactor account.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := money.ParseMYST(args[0])
			if err != nil {
				return err
			}
			if amount.Sign() == 0 {
				return errors.New("amount must be above zero")
			}
			return f.local(cmd).WithAccounts(cmd.Context(), f.AccountFlags, false, true, func(api node.AccountAPI, id common.Address) error {
				r, err := api.TopUp(cmd.Context(), id, args[0], fromTransactor)
				if err != nil {
					return err
				}
				return r.Print(cmd.OutOrStdout(), f.amounts)
			})
		},
	}
	cmd.Flags().BoolVar(&fromTransactor, "from-transactor", false, "transfer from the transactor account even on a dev deployment")
	return cmd
}

func newAccountBalanceCmd(f *accountFlags) *cobra.Command {
	return leafCmd("balance", "Show the identity's registration, channel and provider channel", func(cmd *cobra.Command) error {
		return f.local(cmd).WithAccounts(cmd.Context(), f.AccountFlags, false, false, func(api node.AccountAPI, id common.Address) error {
			a, err := api.Account(cmd.Context(), id)
			if err != nil {
				return err
			}
			return a.Print(cmd.OutOrStdout(), f.amounts)
		})
	})
}

func newAccountSettleCmd(f *accountFlags) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "settle --promise FILE",
		Short: "Settle a signed promise on chain",
		Long: `Settles the promise in FILE (written by 'myst account promise' or a hermes):
a consumer promise pays the consumer channel's hermes; a provider promise
(signed by the hermes operator) pays the provider's beneficiary, minus the
hermes fee. Anyone may submit; the transactor gets the promise's fee.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("--promise FILE is required")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			st, err := chain.DecodeSettlement(data)
			if err != nil {
				return err
			}
			r, err := f.local(cmd).SettlePromise(cmd.Context(), f.AccountFlags, st)
			if err != nil {
				return err
			}
			return r.Print(cmd.OutOrStdout(), f.amounts)
		},
	}
	cmd.Flags().StringVar(&file, "promise", "", "settlement JSON file")
	return cmd
}

func newAccountBeneficiaryCmd(f *accountFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "beneficiary ADDR",
		Short: "Change the identity's payout address (signed, nonce-protected)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ben, err := identity.ParseAddress(args[0])
			if err != nil {
				return err
			}
			if f.TransactorURL != "" { // the identity pays no gas
				return f.viaRelay(cmd, "beneficiary", args[0])
			}
			return f.local(cmd).WithAccounts(cmd.Context(), f.AccountFlags, true, true, func(api node.AccountAPI, id common.Address) error {
				r, err := api.SetBeneficiary(cmd.Context(), id, ben)
				if err == nil {
					fmt.Fprintln(cmd.OutOrStdout(), r.Line("beneficiary of "+id.Hex()+" is now "+r.Beneficiary))
				}
				return err
			})
		},
	}
}

func newAccountPromiseCmd(f *accountFlags) *cobra.Command {
	var amount, fee, provider, preimage, out string
	cmd := &cobra.Command{
		Use:   "promise --amount AMOUNT [--provider ADDR] --out FILE",
		Short: "Sign a cumulative promise as the identity (dev and testing tool)",
		Long: `Signs a cumulative promise and writes a settlement file for 'myst account settle'.
Without --provider the identity is a consumer promising AMOUNT to its hermes
on its own channel. With --provider the identity must be the hermes operator,
promising AMOUNT to that provider's channel in the hermes contract. The
hashlock secret is --preimage (hex, 32 bytes) or a random one, and is written
into the file: in a real session only the provider knows it until it is paid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out FILE is required")
			}
			req, err := node.ParsePromiseRequest(amount, fee, provider, preimage)
			if err != nil {
				return err
			}
			return f.local(cmd).WritePromise(cmd.Context(), cmd.OutOrStdout(), f.amounts, f.AccountFlags, req, out)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&amount, "amount", "", "cumulative amount in MYST")
	fl.StringVar(&fee, "fee", "0", "transactor fee in MYST (out of the amount)")
	fl.StringVar(&provider, "provider", "", "provider identity (hermes operator promise)")
	fl.StringVar(&preimage, "preimage", "", "hashlock secret, 0x + 64 hex digits (default random)")
	fl.StringVar(&out, "out", "", "settlement file to write")
	return cmd
}

func newAccountExitCmd(f *accountFlags) *cobra.Command {
	var finalize bool
	cmd := &cobra.Command{
		Use:   "exit",
		Short: "Leave the channel without the hermes: request, then --finalize after the timelock",
		Long: `Starts a unilateral exit from the identity's channel. During the timelock the
hermes can still settle promises it holds; afterwards 'myst account exit
--finalize' pays the rest of the channel to the identity's beneficiary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.local(cmd).Exit(cmd.Context(), cmd.OutOrStdout(), f.AccountFlags, finalize)
		},
	}
	cmd.Flags().BoolVar(&finalize, "finalize", false, "finalize a requested exit after its timelock")
	return cmd
}

// local is the node of the data dir (node.Local) as cmd sees it.
func (f *accountFlags) local(cmd *cobra.Command) *node.Local { return f.app.local(cmd) }

func (f *accountFlags) viaRelay(cmd *cobra.Command, what, arg string) error {
	return f.local(cmd).ViaTransactor(cmd.Context(), cmd.OutOrStdout(), f.AccountFlags, what, arg)
}
