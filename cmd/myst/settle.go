package main

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// settleFlags configure a provider's automatic settlement.
type settleFlags struct {
	auto, atShutdown bool
	threshold        string
	maxFeeShare      float64
	interval         time.Duration
}

// register declares the --settle.* flags.
func (f *settleFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&f.auto, "settle.auto", true, "settle the hermes earnings on chain automatically (see --settle.threshold, --settle.max-fee-share)")
	fl.StringVar(&f.threshold, "settle.threshold", money.FormatMYST(node.DefaultSettleThreshold), "settle automatically once this much MYST is unsettled")
	fl.Float64Var(&f.maxFeeShare, "settle.max-fee-share", float64(node.DefaultMaxFeeShareBps)/10000, "settle automatically only while the fees (hermes + transactor) are at most this share of the amount (0-1)")
	fl.DurationVar(&f.interval, "settle.interval", node.DefaultSettleInterval, "how often to check the earnings for automatic settlement")
	fl.BoolVar(&f.atShutdown, "settle.at-shutdown", true, "also check (and settle) when the provider stops")
}

// policy is the auto-settlement policy (nil: --settle.auto=false).
func (f *settleFlags) policy() (*node.SettlePolicy, error) {
	if !f.auto {
		return nil, nil
	}
	thr, err := money.ParseMYST(f.threshold)
	if err != nil {
		return nil, fmt.Errorf("--settle.threshold: %w", err)
	}
	if math.IsNaN(f.maxFeeShare) || f.maxFeeShare < 0 || f.maxFeeShare > 1 {
		return nil, fmt.Errorf("--settle.max-fee-share %v: want a share between 0 and 1", f.maxFeeShare)
	}
	p := &node.SettlePolicy{Threshold: thr, MaxFeeShareBps: uint16(math.Round(f.maxFeeShare * 10000)), Interval: f.interval, AtShutdown: f.atShutdown}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("--settle.*: %w", err)
	}
	return p, nil
}

func newServiceSettlementsCmd(a *app) *cobra.Command {
	var wei bool
	cmd := &cobra.Command{
		Use:   "settlements",
		Short: "List the provider's settlement attempts (GET /settlements on a running service or daemon, else from <data-dir>/provider)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var list []tequilapi.SettlementDTO
			fromAPI := false
			if c, err := a.daemonClient(ctx); err == nil {
				var res tequilapi.SettlementsDTO
				err := c.Do(ctx, http.MethodGet, "/settlements", nil, &res)
				switch {
				case err == nil:
					list, fromAPI = res.Settlements, true
				case !client.IsCode(err, tequilapi.CodeNotFound):
					return err
				}
			}
			if !fromAPI {
				db, err := storage.Open(filepath.Join(a.dataDir, "provider", storage.FileName), storage.WithLockTimeout(time.Second))
				if err != nil {
					return fmt.Errorf("provider database (no running service answered): %w", err)
				}
				defer db.Close()
				h, err := node.NewSettlementHistory(ctx, db)
				if err != nil {
					return err
				}
				if list, err = h.Settlements(ctx, tequilapi.MaxSettlementsListed); err != nil {
					return err
				}
			}
			return printSettlements(cmd, list, wei)
		},
	}
	cmd.Flags().BoolVar(&wei, "wei", false, "show amounts in wei")
	return cmd
}

func printSettlements(cmd *cobra.Command, list []tequilapi.SettlementDTO, wei bool) error {
	out := cmd.OutOrStdout()
	if len(list) == 0 {
		fmt.Fprintln(out, "no settlements yet")
		return nil
	}
	amount := func(s string) string {
		if wei {
			return s
		}
		v, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return s
		}
		return money.FormatMYST(v)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTRIGGER\tSTATUS\tTRY\tAMOUNT\tFEES (HERMES+TX)\tBENEFICIARY\tTX / ERROR")
	for _, s := range list {
		detail := s.Tx
		if s.Error != "" {
			detail = s.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s+%s\t%s\t%s\n", s.Time, s.Trigger, s.Status, s.Attempt, amount(s.Unsettled),
			amount(s.HermesFee), amount(s.TransactorFee), s.Beneficiary, detail)
	}
	return errors.Join(tw.Flush())
}
