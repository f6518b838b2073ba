package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/node"
)

// registerSettle declares the --settle.* flags of a provider.
func registerSettle(fl *pflag.FlagSet, o *node.SettleOptions) {
	fl.BoolVar(&o.Auto, "settle.auto", true, "settle the hermes earnings on chain automatically (see --settle.threshold, --settle.max-fee-share)")
	fl.StringVar(&o.Threshold, "settle.threshold", money.FormatMYST(node.DefaultSettleThreshold), "settle automatically once this much MYST is unsettled")
	fl.Float64Var(&o.MaxFeeShare, "settle.max-fee-share", float64(node.DefaultMaxFeeShareBps)/10000, "settle automatically only while the fees (hermes + transactor) are at most this share of the amount (0-1)")
	fl.DurationVar(&o.Interval, "settle.interval", node.DefaultSettleInterval, "how often to check the earnings for automatic settlement")
	fl.BoolVar(&o.AtShutdown, "settle.at-shutdown", true, "also check (and settle) when the provider stops")
}

func newServiceSettlementsCmd(a *app) *cobra.Command {
	var wei bool
	cmd := &cobra.Command{
		Use:   "settlements",
		Short: "List the provider's settlement attempts (GET /settlements on a running service or daemon, else from <data-dir>/provider)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := a.local(cmd).Settlements(cmd.Context())
			if err != nil {
				return err
			}
			return node.WriteSettlements(cmd.OutOrStdout(), list, wei)
		},
	}
	cmd.Flags().BoolVar(&wei, "wei", false, "show amounts in wei")
	return cmd
}
