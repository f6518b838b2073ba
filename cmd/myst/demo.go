package main

import (
	"fmt"
	"io"
	"math/big"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tequilapi"
)

func newDemoCmd(a *app) *cobra.Command {
	var sizeMiB int
	var country string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Drive a whole paid VPN session through an in-process devnet and report it",
		Long: `Starts a devnet (see myst devnet), lists the proposals it discovers over
libp2p, connects to a paid provider through a local SOCKS5 proxy, downloads
--size-mib MiB from a local HTTP server through the WireGuard tunnel, pays
per second and per byte with promises through the hermes, disconnects,
settles the provider on chain and prints a report.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "myst demo: a paid session on an in-process devnet")
			rep, err := node.RunDemo(cmd.Context(), node.DemoConfig{
				DataDir: a.devnetDataDir(cmd), Size: sizeMiB << 20, Country: country, Progress: progressTo(out), Log: a.devnetLog(cmd),
			})
			if err != nil {
				return err
			}
			return printDemoReport(out, rep)
		},
	}
	cmd.Flags().IntVar(&sizeMiB, "size-mib", 20, "MiB to download through the tunnel")
	cmd.Flags().StringVar(&country, "country", "DE", "country of the provider to use")
	return cmd
}

func myst(v *big.Int) string {
	if v == nil {
		return "0"
	}
	return money.FormatMYST(v) + " MYST"
}

func printDemoReport(w io.Writer, r node.DemoReport) error {
	fmt.Fprintf(w, "\nproposals seen: %d\n", len(r.Proposals))
	if err := tequilapi.WriteProposalTable(w, tequilapi.Listed(r.Proposals, nil)); err != nil {
		return err
	}
	fees := new(big.Int).Sub(r.After.Hermes, r.Before.Hermes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nsession with\t%s\n", r.Provider.Hex())
	fmt.Fprintf(tw, "connect (request, tunnel up)\t%s\n", r.ConnectTime.Round(100_000))
	fmt.Fprintf(tw, "connect -> first byte\t%s\n", r.ConnectFirstByte.Round(100_000))
	fmt.Fprintf(tw, "downloaded\t%d bytes in %s (%.1f MiB/s)\n", r.Bytes, r.DownloadTime.Round(1_000_000), r.ThroughputMiBps())
	fmt.Fprintf(tw, "tunnel bytes (up+down)\t%d\n", r.TunnelBytes)
	fmt.Fprintf(tw, "session duration\t%s\n", r.SessionDuration.Round(1_000_000))
	fmt.Fprintf(tw, "invoices paid\t%d\n", r.Invoices)
	fmt.Fprintf(tw, "MYST promised by consumer\t%s\n", myst(r.Promised))
	fmt.Fprintf(tw, "provider earnings (hermes)\t%s\n", myst(r.HermesEarned))
	fmt.Fprintf(tw, "settled on chain\t%s\n", myst(r.SettledAmount))
	fmt.Fprintf(tw, "settlement tx\t%s\n", r.SettlementTx.Hex())
	fmt.Fprintf(tw, "\non-chain balances\tbefore\tafter\n")
	fmt.Fprintf(tw, "consumer channel\t%s\t%s\n", myst(r.Before.ConsumerChannel), myst(r.After.ConsumerChannel))
	fmt.Fprintf(tw, "provider\t%s\t%s\n", myst(r.Before.Provider), myst(r.After.Provider))
	fmt.Fprintf(tw, "hermes contract\t%s\t%s\n", myst(r.Before.Hermes), myst(r.After.Hermes))
	fmt.Fprintf(tw, "\nconsumer paid on chain\t%s\n", myst(r.ConsumerChannelDe))
	fmt.Fprintf(tw, "provider received\t%s\n", myst(r.ProviderReceived))
	fmt.Fprintf(tw, "hermes fee (%d bps)\t%s\n", r.HermesFeeBps, myst(fees))
	check := "exact"
	if new(big.Int).Add(r.ProviderReceived, fees).Cmp(r.ConsumerChannelDe) != 0 {
		check = "MISMATCH"
	}
	fmt.Fprintf(tw, "paid = received + fee\t%s\n", check)
	return tw.Flush()
}
