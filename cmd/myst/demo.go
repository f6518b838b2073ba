package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/config"
	"github.com/openmyst/openmyst/node"
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
				DataDir: a.devnetDataDir(cmd), Size: sizeMiB << 20, Country: country, Progress: node.ProgressTo(out), Log: config.QuietLogger(cmd, a.log),
			})
			if err != nil {
				return err
			}
			return rep.Print(out)
		},
	}
	cmd.Flags().IntVar(&sizeMiB, "size-mib", 20, "MiB to download through the tunnel")
	cmd.Flags().StringVar(&country, "country", "DE", "country of the provider to use")
	return cmd
}
