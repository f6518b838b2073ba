package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/node"
)

func newTransactorCmd(a *app) *cobra.Command {
	f := accountFlags{app: a}
	var o node.TransactorOptions
	cmd := &cobra.Command{
		Use:   "transactor",
		Short: "Run the gasless transactor: relays registrations, beneficiary changes and provider settlements for a fee (docs/transactor.md)",
		Long:  "Pays the gas of the Registry's signed calls from --chain.transactor-key-file (the dev transactor on dev deployments),\ntakes its quoted fee from each call and redeems referral vouchers. HTTPS with --tls.cert and --tls.key; plain HTTP\nonly on a loopback --transactor.listen unless --transactor.insecure-http.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := f.local(cmd).OpenChain(cmd.Context(), f.ChainFlags, true)
			if err != nil {
				return err
			}
			defer s.Close()
			return node.RunTransactor(cmd.Context(), cmd.OutOrStdout(), s, f.TransactorKeyFile, a.dataDir, o, a.log)
		},
	}
	f.registerChain(cmd.Flags())
	cmd.Flags().StringVar(&f.Hermes, "hermes", "", "hermes whose registrations and settlements it relays (default: the deployment's hermes)")
	o.Register(cmd.Flags())
	return cmd
}

func newAccountVoucherCmd(f *accountFlags) *cobra.Command {
	approve, ttl := "", time.Duration(0)
	cmd := &cobra.Command{
		Use: "voucher AMOUNT", Args: cobra.ExactArgs(1),
		Short: "Sign a referral voucher code worth AMOUNT MYST as the sponsor (--chain.transactor-key-file) for --transactor; print the code",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.local(cmd).OpenChain(cmd.Context(), f.ChainFlags, true)
			if err != nil {
				return err
			}
			defer s.Close()
			out, err := node.SignVoucher(cmd.Context(), s, f.TransactorKeyFile, f.TransactorURL, args[0], approve, ttl)
			fmt.Fprint(cmd.OutOrStdout(), out)
			return err
		},
	}
	cmd.Flags().StringVar(&approve, "approve", "", "first set the sponsor's voucher budget: allow the transactor this much MYST")
	cmd.Flags().DurationVar(&ttl, "ttl", 30*24*time.Hour, "how long the voucher may be redeemed")
	return cmd
}
