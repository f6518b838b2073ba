package main

import (
	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/config"
	"github.com/openmyst/openmyst/node"
)

// devnetDataDir is --data-dir when given explicitly, else "" (a temp dir).
func (a *app) devnetDataDir(cmd *cobra.Command) string {
	if config.DataDirGiven(cmd) {
		return a.dataDir
	}
	return ""
}

func newDevnetCmd(a *app) *cobra.Command {
	var chainPort int
	return &cobra.Command{
		Use:   "devnet",
		Short: "Run a whole openmyst network in one process on loopback",
		Long: `Starts, in this process and on loopback only: a dev chain with the
contracts deployed, a hermes, a bootstrap peer, three providers in userspace
mode (DE and US paid nodes and a free NL test node) and a consumer identity
funded from the dev faucet. Prints how to use it and runs until interrupted.
State lives in a temp dir (removed on exit) unless --data-dir is given.
The network's definition is written to <data-dir>/networks/devnet.toml:
other processes join with --network <that file> (or MYST_NETWORK).

The dev keys are public (dev chains only).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return node.RunDevnet(cmd.Context(), node.DevnetConfig{
				DataDir: a.devnetDataDir(cmd), ChainPort: chainPort, Log: config.QuietLogger(cmd, a.log),
			}, cmd.OutOrStdout())
		},
	}
}
