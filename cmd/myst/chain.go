package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/node"
)

func newChainCmd(a *app) *cobra.Command {
	return groupCmd("chain", "Blockchain tools: the embedded dev chain, contract deployment", "",
		newChainDevCmd(a), newChainDeployCmd(a))
}

func newChainDevCmd(a *app) *cobra.Command {
	var (
		host, datadir, depPath string
		port                   int
		period, exitTimelock   time.Duration
		feeDelay               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run an in-process go-ethereum dev chain with the openmyst contracts",
		Long: `Runs a go-ethereum dev chain in this process: a real EVM and JSON-RPC on
127.0.0.1:8545 (any EVM client works: curl eth_blockNumber, ethclient, ...).
A block is mined per transaction (--period 0) or every --period. The MYST
token (with an open dev faucet), the registry and a dev hermes are deployed
at fixed addresses at start, and the addresses are written to
--chain.deployment (default <data-dir>/chain/deployment.json) for the other
commands. --datadir keeps the chain across restarts (in memory otherwise).

The pre-funded dev account keys are public (keccak256("openmyst dev account N")):
never send real value to them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if depPath == "" {
				depPath = a.local(cmd).DeploymentPath()
			}
			return devchain.Run(ctx, devchain.Config{
				Host: host, Port: port, Period: period, DataDir: datadir,
				ExitTimelock: exitTimelock, FeeNoticeDelay: feeDelay, Log: a.log,
			}, depPath, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&host, "host", "127.0.0.1", "JSON-RPC listen host")
	f.IntVar(&port, "port", 8545, "JSON-RPC port (0 picks a free port)")
	f.DurationVar(&period, "period", 0, "mine a block every period (whole seconds); 0 mines one per transaction")
	f.StringVar(&datadir, "datadir", "", "keep the chain in this directory across restarts (default: in memory)")
	f.StringVar(&depPath, "chain.deployment", "", "write the deployment JSON here (default <data-dir>/chain/deployment.json)")
	f.DurationVar(&exitTimelock, "exit-timelock", 10*time.Minute, "consumer channel unilateral exit timelock")
	f.DurationVar(&feeDelay, "fee-notice-delay", time.Hour, "delay before a hermes fee change applies")
	return cmd
}

func newChainDeployCmd(a *app) *cobra.Command {
	cfg := node.DeployConfig{Log: a.log}
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy the MYST token and the registry to any EVM chain",
		Long: `Deploys the MYST token (mints --supply to --holder; --faucet makes it a dev
token anyone can mint) and the Registry (which creates the channel and hermes
implementations) from the account in --chain.transactor-key-file, and writes
the deployment JSON to --out for the other commands (--chain.deployment).
Hermes hubs register themselves afterwards (myst hermes).

Each step is recorded in <out>.progress before its transaction is sent,
and the transactions are kept in the data dir's pending file: run the same
command again after a crash and it finishes the pending transaction under
its nonce and continues at the next step. Run again after it completed, it
sends nothing and prints the deployment. It never overwrites an --out file
that has no progress file beside it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l := a.local(cmd)
			if cfg.Out == "" {
				cfg.Out = l.DeploymentPath()
			}
			cfg.PendingDir = l.PendingDir()
			res, err := node.DeployContracts(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			dep, what := res.Deployment, "deployed"
			if res.Already {
				what = "already deployed (nothing sent)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s on chain %d (block %d)\n  token:    %s\n  registry: %s\n  deployment: %s\n  progress: %s\n", what, dep.ChainID, dep.DeployBlock, dep.Token.Hex(), dep.Registry.Hex(), cfg.Out, res.Progress)
			return nil
		},
	}
	f := cmd.Flags()
	f.Var(network.RPCFlag(&cfg.RPC, "http://127.0.0.1:8545"), "chain.rpc", "EVM JSON-RPC endpoint; repeat it (or separate by commas) for RPCs to fail over to")
	f.StringVar(&cfg.KeyFile, "chain.transactor-key-file", "", "file with the deployer's hex private key")
	f.StringVar(&cfg.Out, "out", "", "deployment JSON to write (default <data-dir>/chain/deployment.json)")
	f.StringVar(&cfg.Supply, "supply", "0", "MYST minted to --holder at deployment")
	f.StringVar(&cfg.Holder, "holder", "", "receives --supply (default: the deployer)")
	f.StringVar(&cfg.MinHermesStake, "min-hermes-stake", "100", "least MYST stake a hermes registers with")
	f.BoolVar(&cfg.Params.Faucet, "faucet", false, "dev token: anyone may mint (dev chains only)")
	f.DurationVar(&cfg.Params.ExitTimelock, "exit-timelock", 24*time.Hour, "consumer channel unilateral exit timelock")
	f.DurationVar(&cfg.Params.FeeNoticeDelay, "fee-notice-delay", 7*24*time.Hour, "delay before a hermes fee change applies")
	return cmd
}
