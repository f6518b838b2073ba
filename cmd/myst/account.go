package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
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
	"github.com/openmyst/openmyst/tequilapi/client"
)

// accountFlags are shared by the account subcommands.
type accountFlags struct {
	app                                       *app
	rpc, deployment, txKeyFile                string
	identity, passFile, hermes, transactorURL string
	wei                                       bool
}

// registerChain declares the --chain.* flags of a command acting on the
// chain directly.
func (f *accountFlags) registerChain(fs *pflag.FlagSet) {
	fs.Var(network.RPCFlag(&f.rpc, "http://127.0.0.1:8545"), "chain.rpc", "EVM JSON-RPC endpoint; repeat it (or separate by commas) for RPCs to fail over to")
	fs.StringVar(&f.deployment, "chain.deployment", "", "contract deployment JSON (default <data-dir>/chain/deployment.json)")
	fs.StringVar(&f.txKeyFile, "chain.transactor-key-file", "", "file with the hex private key paying gas (default on dev deployments: the dev transactor account)")
}

func (f *accountFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	f.registerChain(pf)
	pf.StringVar(&f.identity, "identity", "", "identity address to act as (default: the default identity)")
	pf.StringVar(&f.passFile, "passphrase-file", "", "file holding the identity passphrase (or $MYST_PASSPHRASE)")
	pf.StringVar(&f.hermes, "hermes", "", "hermes contract (default: the deployment's hermes)")
	pf.BoolVar(&f.wei, "wei", false, "show amounts in wei instead of MYST")
	pf.StringVar(&f.transactorURL, "transactor", "", "transactor API relaying register, beneficiary and redeem, and signing vouchers for (docs/transactor.md): the identity pays no gas")
}

func (f *accountFlags) viaRelay(cmd *cobra.Command, what, arg string) error {
	s, err := f.session(cmd, false)
	if err != nil {
		return err
	}
	defer s.Close()
	return f.withSigner(cmd, s.id, func(sg identity.Signer) error {
		return node.RelayAccount(cmd.Context(), cmd.OutOrStdout(), s.Chain, f.transactorURL, sg, what, arg)
	})
}

// session is an open chain client plus the resolved identity address.
type session struct {
	*node.Chain
	id common.Address
}

// open connects to the chain; withTx loads the key that pays gas.
func (f *accountFlags) open(ctx context.Context, withTx bool) (*session, error) {
	cfg, err := f.app.chainConfig(f.rpc, f.deployment, f.txKeyFile, f.hermes, "hermes")
	if err != nil {
		return nil, err
	}
	if withTx {
		cfg.Tx = node.TxRequired
	}
	c, err := node.OpenChain(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &session{Chain: c}, nil
}

// session opens the chain and resolves the identity (identityOf).
func (f *accountFlags) session(cmd *cobra.Command, withTx bool) (*session, error) {
	s, err := f.open(cmd.Context(), withTx)
	if err != nil {
		return nil, err
	}
	if s.id, err = f.identityOf(cmd, nil); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// identityOf resolves --identity, else api's default identity (api nil:
// the running daemon's, else the keystore's).
func (f *accountFlags) identityOf(cmd *cobra.Command, api identityAPI) (id common.Address, err error) {
	if f.identity != "" {
		return identity.ParseAddress(f.identity)
	}
	if api != nil {
		return defaultIdentity(cmd.Context(), api)
	}
	err = f.app.withIdentities(cmd, false, func(api identityAPI) error {
		id, err = defaultIdentity(cmd.Context(), api)
		return err
	})
	return id, err
}

// withSigner unlocks the identity in the local keystore and runs fn with
// its signer.
func (f *accountFlags) withSigner(cmd *cobra.Command, addr common.Address, fn func(identity.Signer) error) error {
	return f.app.withLocalIdentities(false, func(m *identity.Manager) error {
		if err := unlocked(cmd, &tequilapi.Identities{IDs: m}, addr, f.passFile); err != nil {
			return err
		}
		s, err := m.Signer(addr)
		if err != nil {
			return err
		}
		return fn(s)
	})
}

// accountAPI is what the account commands do on an identity's account: a
// running daemon's Tequilapi client and a local tequilapi.Accounts over
// this process's keystore and chain both implement it.
type accountAPI interface {
	Account(ctx context.Context, id common.Address) (tequilapi.AccountDTO, error)
	Register(ctx context.Context, id common.Address, req tequilapi.RegisterRequest) (tequilapi.RegisterResponse, error)
	TopUp(ctx context.Context, id common.Address, amount string, fromTransactor bool) (tequilapi.TopupResponse, error)
	SetBeneficiary(ctx context.Context, id, beneficiary common.Address) (tequilapi.BeneficiaryResponse, error)
}

// withAccounts runs fn through the daemon's Tequilapi when a daemon runs
// for the data dir and no --hermes is given (the daemon acts with its own
// --chain.* settings and the identity unlocked there); when it has no
// chain, or there is no daemon, fn acts on the chain directly. sign says
// fn signs as the identity; withTx that it sends transactions.
func (f *accountFlags) withAccounts(cmd *cobra.Command, sign, withTx bool, fn func(accountAPI, common.Address) error) error {
	if c, err := f.app.daemonClient(cmd.Context()); err == nil && f.hermes == "" {
		id, err := f.identityOf(cmd, c)
		if err == nil && sign {
			err = unlocked(cmd, c, id, f.passFile)
		}
		if err == nil {
			err = fn(c, id)
		}
		if !client.IsCode(err, tequilapi.CodeChainUnavailable) {
			return err
		}
		f.app.log.Info("daemon cannot do it; acting on the chain directly", "reason", err)
	}
	s, err := f.session(cmd, withTx)
	if err != nil {
		return err
	}
	defer s.Close()
	acc := s.accounts(f.app)
	if !sign {
		return fn(acc, s.id)
	}
	return f.app.withLocalIdentities(false, func(m *identity.Manager) error {
		acc.IDs = m
		if err := unlocked(cmd, &tequilapi.Identities{IDs: m}, s.id, f.passFile); err != nil {
			return err
		}
		return fn(acc, s.id)
	})
}

// accounts acts on accounts on the session's chain (tequilapi.Accounts;
// without IDs it cannot sign).
func (s *session) accounts(a *app) *tequilapi.Accounts {
	return &tequilapi.Accounts{Chains: tequilapi.ChainSourceFunc(func(context.Context) (tequilapi.AccountChain, common.Address, error) {
		return s.Client, s.Hermes, nil
	}), Log: a.log}
}

// amount formats an API amount pair (MYST decimal, wei) per --wei.
func (f *accountFlags) amount(mystDec, wei string) string {
	if f.wei {
		return wei + " wei"
	}
	return mystDec + " MYST"
}

// amountWei formats a wei amount per --wei.
func (f *accountFlags) amountWei(v *big.Int) string { return f.amount(money.FormatMYST(v), v.String()) }

func printTx(w io.Writer, what string, tx tequilapi.TxDTO) {
	fmt.Fprintf(w, "%s: tx %s (block %d, gas %d)\n", what, tx.TxHash, tx.Block, tx.GasUsed)
}

func newAccountCmd(a *app) *cobra.Command {
	f := &accountFlags{app: a}
	cmd := &cobra.Command{
		Use:   "account",
		Short: "On-chain account: register, top up, balance, settle, beneficiary, exit",
		Long: `Acts on chain for an identity (--identity, default the keystore's default
identity). Amounts are MYST with up to 18 decimals ("1.5"); --wei prints raw
wei. Gas is paid by --chain.transactor-key-file, or on dev deployments by
the dev transactor account, so identities never need ETH.

When a daemon runs for the data dir (and no --hermes is given), register,
topup, balance, beneficiary and settle of a provider promise go through its
Tequilapi and act on the daemon's chain (its --chain.* flags), with the
identity unlocked in the daemon; if the daemon has no chain they act on
the chain directly.`,
	}
	f.register(cmd)
	cmd.AddCommand(&cobra.Command{Use: "redeem CODE", Args: cobra.ExactArgs(1), Short: "Redeem a referral voucher through --transactor: free registration and a starter top-up", RunE: func(cmd *cobra.Command, args []string) error { return f.viaRelay(cmd, "redeem", args[0]) }})
	cmd.AddCommand(newAccountRegisterCmd(f), newAccountTopupCmd(f), newAccountBalanceCmd(f),
		newAccountSettleCmd(f), newAccountBeneficiaryCmd(f), newAccountPromiseCmd(f), newAccountExitCmd(f), newAccountVoucherCmd(f))
	return cmd
}

func newAccountRegisterCmd(f *accountFlags) *cobra.Command {
	var req tequilapi.RegisterRequest
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register the identity with the hermes and create its channel",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := money.ParseMYST(req.Fee); err != nil {
				return fmt.Errorf("--fee: %w", err)
			}
			if _, err := identity.ParseAddress(req.Beneficiary); req.Beneficiary != "" && err != nil {
				return fmt.Errorf("--beneficiary: %w", err)
			}
			if f.transactorURL != "" {
				return f.viaRelay(cmd, "register", "")
			}
			return f.withAccounts(cmd, true, true, func(api accountAPI, id common.Address) error {
				r, err := api.Register(cmd.Context(), id, req)
				if err != nil {
					return err
				}
				printTx(cmd.OutOrStdout(), "registered "+id.Hex(), r.TxDTO)
				fmt.Fprintf(cmd.OutOrStdout(), "channel: %s\n", r.Channel)
				return nil
			})
		},
	}
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
			return f.withAccounts(cmd, false, true, func(api accountAPI, id common.Address) error {
				r, err := api.TopUp(cmd.Context(), id, args[0], fromTransactor)
				if err != nil {
					return err
				}
				printTx(cmd.OutOrStdout(), "topped up "+r.Channel+" with "+f.amount(r.Amount, r.AmountWei), r.TxDTO)
				fmt.Fprintf(cmd.OutOrStdout(), "channel balance: %s\n", f.amount(r.ChannelBalance, r.ChannelBalanceWei))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&fromTransactor, "from-transactor", false, "transfer from the transactor account even on a dev deployment")
	return cmd
}

func newAccountBalanceCmd(f *accountFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "balance",
		Short: "Show the identity's registration, channel and provider channel",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withAccounts(cmd, false, false, func(api accountAPI, id common.Address) error {
				a, err := api.Account(cmd.Context(), id)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "identity:     %s\nregistered:   %v\n", a.ID, a.Registered)
				if a.Registered {
					fmt.Fprintf(w, "beneficiary:  %s (%s)\n", a.Beneficiary, f.amount(a.BeneficiaryBalance, a.BeneficiaryBalanceWei))
				}
				fmt.Fprintf(w, "wallet:       %s\nhermes:       %s\n", f.amount(a.TokenBalance, a.TokenBalanceWei), a.Hermes)
				fmt.Fprintf(w, "channel:      %s (deployed: %v)\n  balance:    %s\n  settled:    %s\n", a.Channel, a.ChannelDeployed,
					f.amount(a.ChannelBalance, a.ChannelBalanceWei), f.amount(a.Settled, a.SettledWei))
				if a.ExitUnlockAt != nil {
					fmt.Fprintf(w, "  exit:       pending, can be finalized from %s\n", a.ExitUnlockAt.Format("2006-01-02 15:04:05 MST"))
				}
				fmt.Fprintf(w, "provider channel in hermes:\n  settled:    %s\n  stake:      %s\n",
					f.amount(a.ProviderSettled, a.ProviderSettledWei), f.amount(a.ProviderStake, a.ProviderStakeWei))
				return nil
			})
		},
	}
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
			ctx := cmd.Context()
			var r tequilapi.AccountSettleResponse
			direct := true
			if c, cerr := f.app.daemonClient(ctx); cerr == nil && f.hermes == "" && st.Kind == chain.KindProvider {
				// Through the daemon when it holds the provider identity.
				r, err = c.SettlePromise(ctx, st.Provider, st)
				if direct = client.IsCode(err, tequilapi.CodeChainUnavailable) || client.IsCode(err, tequilapi.CodeNotFound); direct {
					f.app.log.Info("daemon cannot do it; acting on the chain directly", "reason", err)
				}
			}
			if direct {
				s, err := f.open(ctx, true)
				if err != nil {
					return err
				}
				defer s.Close()
				r, err = s.accounts(f.app).Settle(ctx, st)
				if err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			printTx(w, "settled "+st.Kind+" promise", r.TxDTO)
			if st.Kind == chain.KindProvider {
				fmt.Fprintf(w, "paid %s (before hermes fee) to beneficiary %s; settled now %s of promised %s\n",
					f.amount(r.Paid, r.PaidWei), r.Beneficiary, f.amount(r.Settled, r.SettledWei), f.amount(r.Promised, r.PromisedWei))
				return nil
			}
			fmt.Fprintf(w, "paid %s to hermes %s; settled now %s of promised %s; channel balance %s\n", f.amount(r.Paid, r.PaidWei), r.Hermes,
				f.amount(r.Settled, r.SettledWei), f.amount(r.Promised, r.PromisedWei), f.amount(r.ChannelBalance, r.ChannelBalanceWei))
			return nil
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
			if f.transactorURL != "" { // the identity pays no gas
				return f.viaRelay(cmd, "beneficiary", args[0])
			}
			return f.withAccounts(cmd, true, true, func(api accountAPI, id common.Address) error {
				r, err := api.SetBeneficiary(cmd.Context(), id, ben)
				if err != nil {
					return err
				}
				printTx(cmd.OutOrStdout(), "beneficiary of "+id.Hex()+" is now "+r.Beneficiary, r.TxDTO)
				return nil
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
			s, err := f.session(cmd, false)
			if err != nil {
				return err
			}
			defer s.Close()
			return f.withSigner(cmd, s.id, func(sg identity.Signer) error {
				st, data, err := node.SignSettlement(s.Client, s.Hermes, sg, req)
				if err != nil {
					return err
				}
				if err := os.WriteFile(out, data, 0o600); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s promise for %s on channel %x signed by %s written to %s\n", st.Kind,
					f.amountWei(req.Amount), st.Promise.ChannelID, sg.Address().Hex(), out)
				return nil
			})
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
			s, err := f.session(cmd, true)
			if err != nil {
				return err
			}
			defer s.Close()
			ctx, w := cmd.Context(), cmd.OutOrStdout()
			ch := s.Client.ChannelAddress(s.id, s.Hermes)
			if finalize {
				r, err := s.Client.FinalizeExit(ctx, ch)
				if err == nil {
					fmt.Fprintf(w, "exit finalized: tx %s (block %s, gas %d)\n", r.TxHash.Hex(), r.BlockNumber, r.GasUsed)
				}
				return err
			}
			return f.withSigner(cmd, s.id, func(sg identity.Signer) error {
				r, err := s.Client.RequestExit(ctx, sg, ch, nil)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "exit requested: tx %s (block %s, gas %d)\n", r.TxHash.Hex(), r.BlockNumber, r.GasUsed)
				st, err := s.Client.ChannelState(ctx, ch)
				if err == nil {
					fmt.Fprintf(w, "finalize with 'myst account exit --finalize' from %s\n", st.ExitUnlockAt.Format("2006-01-02 15:04:05 MST"))
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&finalize, "finalize", false, "finalize a requested exit after its timelock")
	return cmd
}
