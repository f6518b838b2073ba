package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/transactor"
)

func newTransactorCmd(a *app) *cobra.Command {
	f := accountFlags{app: a}
	var (
		listen, store             string
		regFee, benFee, settleFee string
		insecure                  bool
		maxPerSponsor             int
	)
	cmd := &cobra.Command{
		Use:   "transactor",
		Short: "Run a transactor: relay signed registrations, beneficiary changes and provider settlements, paying the gas",
		Long: `Runs the gasless relay of docs/transactor.md. It pays gas from
--chain.transactor-key-file (on dev deployments the dev transactor account),
signs fee quotes with the same key (GET /v1/fees) and takes the fee each
relayed call carries. Identities with neither ETH nor MYST register with
the fee deferred on chain (paid from their first settlements; limited per
source) and settle their hermes promises through it.
Referral vouchers are redeemed once each, recorded in --transactor.store.
The API is plain HTTP on a loopback address; serve it through a TLS proxy,
or pass --transactor.insecure-http to listen elsewhere.`,
		Example: `  myst chain dev &  myst hermes &
  myst transactor --transactor.listen 127.0.0.1:4070`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			s, err := f.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			key, err := node.TransactorKey(f.txKeyFile, s.Client.Deployment())
			if err != nil {
				return err
			}
			var fees transactor.Fees
			if fees.Register, err = money.ParseMYST(regFee); err != nil {
				return fmt.Errorf("--fee.register: %w", err)
			}
			if fees.Beneficiary, err = money.ParseMYST(benFee); err != nil {
				return fmt.Errorf("--fee.beneficiary: %w", err)
			}
			if fees.Settle, err = money.ParseMYST(settleFee); err != nil {
				return fmt.Errorf("--fee.settle: %w", err)
			}
			if store == "" {
				store = filepath.Join(a.dataDir, "transactor", "transactor.db")
			}
			if err := os.MkdirAll(filepath.Dir(store), 0o700); err != nil {
				return err
			}
			t, err := node.StartTransactor(ctx, node.TransactorConfig{
				Chain: s.Client, Signer: identity.NewKeySigner(key), Hermes: s.Hermes, Fees: fees, StorePath: store,
				MaxVouchersPerSponsor: maxPerSponsor, Listen: listen, InsecureHTTP: insecure, Log: a.log,
			})
			if err != nil {
				return err
			}
			defer t.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "transactor %s serving %s\n", t.Service.Address().Hex(), t.URL())
			<-ctx.Done()
			return nil
		},
	}
	fl := cmd.Flags()
	f.registerChain(fl)
	fl.StringVar(&f.hermes, "hermes", "", "hermes contract (default: the deployment's hermes)")
	fl.StringVar(&listen, "transactor.listen", "127.0.0.1:4070", "API address (loopback unless --transactor.insecure-http)")
	fl.BoolVar(&insecure, "transactor.insecure-http", false, "allow plain HTTP on a non-loopback address")
	fl.StringVar(&store, "transactor.store", "", "SQLite file of voucher redemptions (default <data-dir>/transactor/transactor.db)")
	fl.StringVar(&regFee, "fee.register", "0.01", "least registration fee in MYST (identities whose channel holds less owe it, paid from their first settlements)")
	fl.StringVar(&benFee, "fee.beneficiary", "0.001", "least beneficiary-change fee in MYST")
	fl.StringVar(&settleFee, "fee.settle", "0", "least transactor fee a hermes promise must carry, in MYST")
	fl.IntVar(&maxPerSponsor, "vouchers.max-per-sponsor", transactor.DefaultMaxVouchersPerSponsor, "vouchers redeemed per sponsor at most")
	return cmd
}

// relayClient is the transactor client of --transactor for s's deployment
// (nil when the flag is empty).
func (f *accountFlags) relayClient(s *session) (*transactor.Client, error) {
	if f.transactorURL == "" {
		return nil, nil
	}
	return transactor.NewClient(f.transactorURL, s.Client.Deployment(), nil)
}

// registerViaRelay is `myst account register --transactor`: the local
// identity registers through the transactor (node.EnsureRegisteredVia).
func (f *accountFlags) registerViaRelay(cmd *cobra.Command) error {
	s, err := f.session(cmd, false)
	if err != nil {
		return err
	}
	defer s.Close()
	relay, err := f.relayClient(s)
	if err != nil {
		return err
	}
	return f.withSigner(cmd, s.id, func(sg identity.Signer) error {
		if err := node.EnsureRegisteredVia(cmd.Context(), s.Client, relay, sg, s.Hermes, nil); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "registered %s through the transactor\nchannel: %s\n", s.id.Hex(), s.Client.ChannelAddress(s.id, s.Hermes).Hex())
		return nil
	})
}

// beneficiaryViaRelay is `myst account beneficiary --transactor`.
func (f *accountFlags) beneficiaryViaRelay(cmd *cobra.Command, ben common.Address) error {
	s, err := f.session(cmd, false)
	if err != nil {
		return err
	}
	defer s.Close()
	relay, err := f.relayClient(s)
	if err != nil {
		return err
	}
	return f.withSigner(cmd, s.id, func(sg identity.Signer) error {
		h, err := node.SetBeneficiaryVia(cmd.Context(), s.Client, relay, sg, ben, s.Hermes)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "beneficiary of %s is now %s: tx %s (through the transactor)\n", s.id.Hex(), ben.Hex(), h.Hex())
		return nil
	})
}

func newAccountRedeemCmd(f *accountFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "redeem CODE",
		Short: "Redeem a referral voucher through the transactor: free registration and a starter top-up",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.transactorURL == "" {
				return errors.New("--transactor is required to redeem a voucher")
			}
			s, err := f.session(cmd, false)
			if err != nil {
				return err
			}
			defer s.Close()
			relay, err := f.relayClient(s)
			if err != nil {
				return err
			}
			return f.withSigner(cmd, s.id, func(sg identity.Signer) error {
				res, err := node.RedeemVoucher(cmd.Context(), s.Client, relay, args[0], sg, s.Hermes)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				if res.TopUpTx != nil {
					fmt.Fprintf(w, "starter top-up: tx %s\n", res.TopUpTx.Hex())
				}
				fmt.Fprintf(w, "registered %s: tx %s\nchannel: %s\n", s.id.Hex(), res.Tx.Hex(), res.Channel.Hex())
				return nil
			})
		},
	}
}

func newAccountVoucherCmd(f *accountFlags) *cobra.Command {
	var ttl time.Duration
	var approve string
	cmd := &cobra.Command{
		Use:   "voucher AMOUNT",
		Short: "Sign a referral voucher worth AMOUNT MYST as the sponsor (the --chain.transactor-key-file account)",
		Long: `Prints a single-use voucher code redeemable at --transactor until --ttl
passes. The sponsor is the account of --chain.transactor-key-file (on dev
deployments the dev transactor account); its budget is the MYST it lets the
transactor move: --approve BUDGET sets that allowance first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if f.transactorURL == "" {
				return errors.New("--transactor is required")
			}
			amount, err := money.ParseMYST(args[0])
			if err != nil {
				return err
			}
			s, err := f.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			key, err := node.TransactorKey(f.txKeyFile, s.Client.Deployment())
			if err != nil || key == nil {
				return fmt.Errorf("no sponsor key: %v", err)
			}
			relay, err := f.relayClient(s)
			if err != nil {
				return err
			}
			q, err := relay.Quote(ctx)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if approve != "" {
				b, err := money.ParseMYST(approve)
				if err != nil {
					return fmt.Errorf("--approve: %w", err)
				}
				r, err := s.Client.Approve(ctx, q.Transactor, b)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "allowed the transactor %s MYST: tx %s\n", approve, r.TxHash.Hex())
			}
			v, err := transactor.NewVoucher(identity.NewKeySigner(key), q.ChainID, q.Transactor, amount, ttl, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(w, v.Code())
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 7*24*time.Hour, "how long the voucher stays redeemable")
	cmd.Flags().StringVar(&approve, "approve", "", "first allow the transactor to move this much MYST (the sponsor's budget)")
	return cmd
}
