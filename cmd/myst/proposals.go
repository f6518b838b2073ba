package main

import (
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tequilapi"
)

func newProposalsCmd(a *app) *cobra.Command {
	var (
		pf       node.P2POptions
		wait     time.Duration
		asJSON   bool
		country  string
		ipType   string
		maxGiB   string
		maxHour  string
		provider string
		hermes   string
		sortBy   string
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
			q := url.Values{}
			set := func(k, v string) {
				if v != "" {
					q.Set(k, v)
				}
			}
			set(market.QueryCountry, country)
			set(market.QueryIPType, ipType)
			set(market.QueryMaxPriceGiB, maxGiB)
			set(market.QueryMaxPriceHr, maxHour)
			set(market.QueryProviderID, provider)
			set(market.QueryHermesID, hermes)
			set(market.QuerySort, sortBy)
			filter, err := market.ParseFilter(q)
			if err != nil {
				return err
			}
			var ls []tequilapi.ListedProposal
			if c, cerr := a.daemonClient(cmd); cerr == nil && len(pf.Bootstrap) == 0 {
				ls, err = c.Proposals(cmd.Context(), filter) // the daemon's view, with its scores
			} else {
				if filter.Sort == market.SortQuality {
					fmt.Fprintln(cmd.ErrOrStderr(), "note: no daemon asked (none running, or --p2p.bootstrap given): this short-lived node has no quality scores; sorted by price")
				}
				var ps []market.Proposal
				ps, err = node.CollectProposals(cmd.Context(), node.ProposalsQuery{
					ListenAddrs: pf.Listen, Bootstrap: pf.Bootstrap, ChainID: pf.ChainID, Wait: wait, Filter: filter, Log: a.log,
				})
				ls = tequilapi.Listed(ps, nil)
			}
			if err != nil {
				return err
			}
			if asJSON {
				b, err := tequilapi.MarshalProposals(ls)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				return err
			}
			return tequilapi.WriteProposalTable(cmd.OutOrStdout(), ls)
		},
	}
	fs := cmd.Flags()
	registerP2P(fs, &pf, []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"})
	fs.DurationVar(&wait, "wait", 3*time.Second, "how long to listen for proposals")
	fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	fs.StringVar(&country, "country", "", "only this country (ISO 3166-1 alpha-2, e.g. DE)")
	fs.StringVar(&ipType, "ip-type", "", "only this ip type: residential, hosting or mobile")
	fs.StringVar(&maxGiB, "max-price-gib", "", "highest price per GiB in MYST (e.g. 0.2)")
	fs.StringVar(&maxHour, "max-price-hour", "", "highest price per hour in MYST")
	fs.StringVar(&provider, "provider", "", "only this provider identity (0x...)")
	fs.StringVar(&hermes, "hermes", "", "only providers accepting this hermes (0x...)")
	fs.StringVar(&sortBy, "sort", "", "order: price (per GiB, default), price-hour, provider or quality (the daemon's scores; a short-lived node has none and sorts by price)")
	return cmd
}
