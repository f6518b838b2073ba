package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/tequilapi"
)

// accountFlags are shared by the account subcommands.
type accountFlags struct {
	app                        *app
	rpc, deployment, txKeyFile string
	identity, passFile, hermes string
	wei                        bool
}

// registerChain declares the --chain.* flags of a command acting on the
// chain directly.
func (f *accountFlags) registerChain(fs *pflag.FlagSet) {
	fs.StringVar(&f.rpc, "chain.rpc", "http://127.0.0.1:8545", "EVM JSON-RPC endpoint")
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
}

// session is an open chain client plus the resolved identity address.
type session struct {
	*node.Chain
	id common.Address
}

func (f *accountFlags) amount(v *big.Int) string {
	if f.wei {
		return v.String() + " wei"
	}
	return money.FormatMYST(v) + " MYST"
}

// open connects to the chain; withTx loads the key that pays gas.
func (f *accountFlags) open(ctx context.Context, withTx bool) (*session, error) {
	cfg := node.ChainConfig{RPC: f.rpc, Deployment: f.deployment, TransactorKeyFile: f.txKeyFile, Log: f.app.log}
	if cfg.Deployment == "" {
		cfg.Deployment = f.app.defaultDeploymentPath()
	}
	if withTx {
		cfg.Tx = node.TxRequired
	}
	if f.hermes != "" {
		h, err := identity.ParseAddress(f.hermes)
		if err != nil {
			return nil, fmt.Errorf("--hermes: %w", err)
		}
		cfg.Hermes = h
	}
	c, err := node.OpenChain(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &session{Chain: c}, nil
}

// identityAddress resolves --identity or the keystore's default identity.
func (f *accountFlags) identityAddress(ctx context.Context) (common.Address, error) {
	if f.identity != "" {
		return identity.ParseAddress(f.identity)
	}
	if c, err := f.app.daemonClient(ctx); err == nil {
		// The daemon holds the database that remembers the default.
		return f.daemonIdentity(ctx, c)
	}
	var addr common.Address
	err := f.app.withLocalIdentities(false, func(m *identity.Manager) error {
		a, err := m.Default(ctx)
		addr = a
		return err
	})
	if err != nil {
		return common.Address{}, fmt.Errorf("no --identity and no default identity: %w", err)
	}
	return addr, nil
}

// withSigner unlocks the identity and runs fn with its signer.
func (f *accountFlags) withSigner(cmd *cobra.Command, addr common.Address, fn func(identity.Signer) error) error {
	return f.app.withLocalIdentities(false, func(m *identity.Manager) error {
		pw, err := readPassphrase(cmd, f.passFile, "Passphrase for "+addr.Hex(), false)
		if err != nil {
			return err
		}
		if err := m.Unlock(addr, pw); err != nil {
			return err
		}
		s, err := m.Signer(addr)
		if err != nil {
			return err
		}
		return fn(s)
	})
}

func (f *accountFlags) session(cmd *cobra.Command, withTx bool) (*session, error) {
	s, err := f.open(cmd.Context(), withTx)
	if err != nil {
		return nil, err
	}
	if s.id, err = f.identityAddress(cmd.Context()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func printTx(w io.Writer, what string, r *types.Receipt) {
	fmt.Fprintf(w, "%s: tx %s (block %s, gas %d)\n", what, r.TxHash.Hex(), r.BlockNumber, r.GasUsed)
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
	cmd.AddCommand(newAccountRegisterCmd(f), newAccountTopupCmd(f), newAccountBalanceCmd(f),
		newAccountSettleCmd(f), newAccountBeneficiaryCmd(f), newAccountPromiseCmd(f), newAccountExitCmd(f))
	return cmd
}

func newAccountRegisterCmd(f *accountFlags) *cobra.Command {
	var beneficiary, fee string
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register the identity with the hermes and create its channel",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c := f.daemon(cmd); c != nil {
				if done, err := f.daemonHandled(f.registerViaDaemon(cmd, c, beneficiary, fee)); done {
					return err
				}
			}
			s, err := f.session(cmd, true)
			if err != nil {
				return err
			}
			defer s.Close()
			feeWei, err := money.ParseMYST(fee)
			if err != nil {
				return fmt.Errorf("--fee: %w", err)
			}
			var ben common.Address
			if beneficiary != "" {
				if ben, err = identity.ParseAddress(beneficiary); err != nil {
					return fmt.Errorf("--beneficiary: %w", err)
				}
			}
			return f.withSigner(cmd, s.id, func(sg identity.Signer) error {
				ch, r, err := s.Client.RegisterIdentity(cmd.Context(), sg, s.Hermes, feeWei, ben)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				printTx(w, "registered "+s.id.Hex(), r)
				fmt.Fprintf(w, "channel: %s\n", ch.Hex())
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&beneficiary, "beneficiary", "", "payout address (default: the identity)")
	cmd.Flags().StringVar(&fee, "fee", "0", "transactor fee in MYST, paid from the pre-funded channel")
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
			if c := f.daemon(cmd); c != nil {
				if done, err := f.daemonHandled(f.topupViaDaemon(cmd, c, args[0], fromTransactor)); done {
					return err
				}
			}
			s, err := f.session(cmd, true)
			if err != nil {
				return err
			}
			defer s.Close()
			ctx := cmd.Context()
			ch := s.Client.ChannelAddress(s.id, s.Hermes)
			var r *types.Receipt
			if s.Client.Deployment().Faucet && !fromTransactor {
				r, err = s.Client.Mint(ctx, ch, amount)
			} else {
				r, err = s.Client.TopUp(ctx, ch, amount)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			printTx(w, "topped up "+ch.Hex()+" with "+f.amount(amount), r)
			bal, err := s.Client.TokenBalance(ctx, ch)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "channel balance: %s\n", f.amount(bal))
			return nil
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
			if c := f.daemon(cmd); c != nil {
				if done, err := f.daemonHandled(f.balanceViaDaemon(cmd, c)); done {
					return err
				}
			}
			s, err := f.session(cmd, false)
			if err != nil {
				return err
			}
			defer s.Close()
			acc, err := tequilapi.ReadAccount(cmd.Context(), s.Client, s.Hermes, s.id)
			if err != nil {
				return err
			}
			f.printAccount(cmd.OutOrStdout(), acc)
			return nil
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
			if c := f.daemon(cmd); c != nil && st.Kind == chain.KindProvider {
				// Through the daemon when it holds the provider identity.
				if done, err := f.daemonHandled(f.settleViaDaemon(cmd, c, st), tequilapi.CodeNotFound); done {
					return err
				}
			}
			s, err := f.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			if st.Kind == chain.KindProvider {
				before, err := s.Client.ProviderChannel(ctx, st.Contract, st.Provider)
				if err != nil {
					return err
				}
				r, err := s.Client.Settle(ctx, st)
				if err != nil {
					return err
				}
				after, err := s.Client.ProviderChannel(ctx, st.Contract, st.Provider)
				if err != nil {
					return err
				}
				ben, err := s.Client.Beneficiary(ctx, st.Provider)
				if err != nil {
					return err
				}
				printTx(w, "settled provider promise", r)
				fmt.Fprintf(w, "paid %s (before hermes fee) to beneficiary %s; settled now %s of promised %s\n",
					f.amount(new(big.Int).Sub(after.Settled, before.Settled)), ben.Hex(), f.amount(after.Settled), f.amount(st.Promise.Amount))
				return nil
			}
			before, err := s.Client.ChannelState(ctx, st.Contract)
			if err != nil {
				return err
			}
			r, err := s.Client.Settle(ctx, st)
			if err != nil {
				return err
			}
			after, err := s.Client.ChannelState(ctx, st.Contract)
			if err != nil {
				return err
			}
			printTx(w, "settled consumer promise", r)
			fmt.Fprintf(w, "paid %s to hermes %s; settled now %s of promised %s; channel balance %s\n",
				f.amount(new(big.Int).Sub(after.Settled, before.Settled)), after.Hermes.Hex(), f.amount(after.Settled), f.amount(st.Promise.Amount), f.amount(after.Balance))
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
			if c := f.daemon(cmd); c != nil {
				if done, err := f.daemonHandled(f.beneficiaryViaDaemon(cmd, c, ben)); done {
					return err
				}
			}
			s, err := f.session(cmd, true)
			if err != nil {
				return err
			}
			defer s.Close()
			return f.withSigner(cmd, s.id, func(sg identity.Signer) error {
				r, err := s.Client.SetBeneficiary(cmd.Context(), sg, ben, s.Hermes, nil)
				if err != nil {
					return err
				}
				printTx(cmd.OutOrStdout(), "beneficiary of "+s.id.Hex()+" is now "+ben.Hex(), r)
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
			am, err := money.ParseMYST(amount)
			if err != nil {
				return fmt.Errorf("--amount: %w", err)
			}
			fe, err := money.ParseMYST(fee)
			if err != nil {
				return fmt.Errorf("--fee: %w", err)
			}
			var pre [32]byte
			if preimage != "" {
				b, err := hexutil.Decode(preimage)
				if err != nil || len(b) != 32 {
					return errors.New("--preimage: want 0x + 64 hex digits")
				}
				copy(pre[:], b)
			} else if _, err := rand.Read(pre[:]); err != nil {
				return err
			}
			s, err := f.session(cmd, false)
			if err != nil {
				return err
			}
			defer s.Close()
			st := chain.Settlement{ChainID: s.Client.Deployment().ChainID, Preimage: pre}
			st.Promise = payments.Promise{ChainID: new(big.Int).SetUint64(st.ChainID), Amount: am, Fee: fe, Hashlock: payments.Hashlock(pre[:])}
			if provider != "" {
				p, err := identity.ParseAddress(provider)
				if err != nil {
					return fmt.Errorf("--provider: %w", err)
				}
				st.Kind, st.Contract, st.Provider = chain.KindProvider, s.Hermes, p
				st.Promise.ChannelID = payments.ProviderChannelID(p, s.Hermes)
			} else {
				st.Kind, st.Contract = chain.KindConsumer, s.Client.ChannelAddress(s.id, s.Hermes)
				st.Promise.ChannelID = payments.ConsumerChannelID(st.Contract)
			}
			return f.withSigner(cmd, s.id, func(sg identity.Signer) error {
				if err := st.Promise.Sign(sg); err != nil {
					return err
				}
				data, err := json.MarshalIndent(st, "", "  ")
				if err != nil {
					return err
				}
				if _, err := chain.DecodeSettlement(data); err != nil {
					return fmt.Errorf("self-check of the promise file: %w", err)
				}
				if err := os.WriteFile(out, append(data, '\n'), 0o600); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s promise for %s on channel %x signed by %s written to %s\n", st.Kind, f.amount(am), st.Promise.ChannelID, sg.Address().Hex(), out)
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
			ctx := cmd.Context()
			ch := s.Client.ChannelAddress(s.id, s.Hermes)
			w := cmd.OutOrStdout()
			if finalize {
				r, err := s.Client.FinalizeExit(ctx, ch)
				if err != nil {
					return err
				}
				printTx(w, "exit finalized", r)
				return nil
			}
			return f.withSigner(cmd, s.id, func(sg identity.Signer) error {
				r, err := s.Client.RequestExit(ctx, sg, ch, nil)
				if err != nil {
					return err
				}
				printTx(w, "exit requested", r)
				st, err := s.Client.ChannelState(ctx, ch)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "finalize with 'myst account exit --finalize' from %s\n", st.ExitUnlockAt.Format("2006-01-02 15:04:05 MST"))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&finalize, "finalize", false, "finalize a requested exit after its timelock")
	return cmd
}
