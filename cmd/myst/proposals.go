package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tequilapi"
)

func newProposalsCmd(a *app) *cobra.Command {
	var (
		pf     node.P2POptions
		wait   time.Duration
		asJSON bool
		fo     market.FilterOptions
	)
	cmd := &cobra.Command{
		Use:   "proposals",
		Short: "List provider proposals found on the peer-to-peer network",
		Long: `Ask the running daemon (its view and quality scores) or, without one or
with --p2p.bootstrap, join the network with a short-lived node that collects
signed proposals for --wait (no scores). Prints those matching the filters,
cheapest per GiB first. Prices are in MYST.`,
		Example: `  myst proposals --p2p.bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... --country DE --max-price-gib 0.2
  myst proposals --p2p.bootstrap ... --ip-type residential --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := fo.Filter()
			if err != nil {
				return err
			}
			ls, err := a.local(cmd).Proposals(cmd.Context(), node.ProposalsQuery{
				ListenAddrs: pf.Listen, Bootstrap: pf.Bootstrap, ChainID: pf.ChainID, Wait: wait, Filter: filter,
			}, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if !asJSON {
				return tequilapi.WriteProposalTable(cmd.OutOrStdout(), ls)
			}
			b, err := tequilapi.MarshalProposals(ls)
			if err == nil {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			}
			return err
		},
	}
	fs := cmd.Flags()
	registerP2P(fs, &pf, []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"})
	fs.DurationVar(&wait, "wait", 3*time.Second, "how long to listen for proposals")
	fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	registerFilter(fs, &fo.Country, &fo.IPType, &fo.MaxPriceGiB, &fo.MaxPriceHour)
	fs.StringVar(&fo.ProviderID, "provider", "", "only this provider identity (0x...)")
	fs.StringVar(&fo.HermesID, "hermes", "", "only providers accepting this hermes (0x...)")
	fs.StringVar(&fo.Sort, "sort", "", "order: price (per GiB, default), price-hour, provider or quality (the daemon's scores; a short-lived node has none and sorts by price)")
	return cmd
}
