package main

import (
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/buildinfo"
	"github.com/openmyst/openmyst/config"
	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tequilapi"
)

// app is what every subcommand needs once flags, environment and config
// file have been resolved (see PersistentPreRunE).
type app struct {
	dataDir string
	log     *slog.Logger
	// tequilapiAddress and tequilapiPort locate the daemon's REST API (the
	// daemon listens there, CLI commands look for a running daemon there).
	tequilapiAddress string
	tequilapiPort    int
	// lightScrypt makes new keys use weak scrypt parameters (tests, devnet).
	lightScrypt bool
	// network is the network definition --network named (nil: none).
	network *network.Network
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "myst",
		Short:         "openmyst: a decentralized pay-as-you-go VPN node",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.String(),
		// Flags > MYST_* environment > <data-dir>/config.toml > defaults,
		// for every flag of the command being run; then logging.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup(cmd)
		},
	}
	// Let subcommands have their own PersistentPreRunE without losing ours.
	cobra.EnableTraverseRunHooks = true
	pf := root.PersistentFlags()
	config.AddRootFlags(pf, &a.dataDir)
	pf.StringVar(&a.tequilapiAddress, "tequilapi.address", tequilapi.DefaultAddress, "Tequilapi REST API address")
	pf.IntVar(&a.tequilapiPort, "tequilapi.port", tequilapi.DefaultPort, "Tequilapi REST API port")
	pf.BoolVar(&a.lightScrypt, "keystore.light-scrypt", false, "encrypt new keys with weak, fast scrypt parameters (tests and dev networks only)")
	_ = pf.MarkHidden("keystore.light-scrypt")

	// Each capability adds its command here, one line each.
	root.AddCommand(
		newVersionCmd(a),
		newDaemonCmd(a),
		newIdentityCmd(a),
		newProposalsCmd(a),
		newChainCmd(a),
		newAccountCmd(a),
		newHermesCmd(a),
		newDevnetCmd(a),
		newDemoCmd(a),
		newServiceCmd(a),
		newConnectCmd(a),
		newDisconnectCmd(a),
		newStatusCmd(a),
		newTunnelCmd(a),
		newRelayCmd(a),
		newTransactorCmd(a),
	)
	network.AddFlag(root)
	return root
}

func newVersionCmd(a *app) *cobra.Command {
	return leafCmd("version", "Print the version", func(cmd *cobra.Command) error {
		_, err := cmd.OutOrStdout().Write([]byte(buildinfo.String() + "\n"))
		return err
	})
}

// setup resolves configuration for cmd and sets up logging.
func (a *app) setup(cmd *cobra.Command) (err error) {
	if a.dataDir, err = config.ResolveDataDir(cmd, a.dataDir); err != nil {
		return err
	}
	if a.network, err = network.ApplyFlags(cmd, a.dataDir); err != nil {
		return err
	}
	log, err := config.FlagLogger(cmd)
	if err != nil {
		return err
	}
	a.log = log
	slog.SetDefault(log)
	return nil
}

// local is the node of the data dir as a command sees it (node.Local),
// asking for passphrases on the terminal.
func (a *app) local(cmd *cobra.Command) *node.Local {
	return &node.Local{DataDir: a.dataDir, LightScrypt: a.lightScrypt, Network: a.network, Log: a.log,
		TequilapiURL: "http://" + net.JoinHostPort(a.tequilapiAddress, strconv.Itoa(a.tequilapiPort)),
		Prompt:       node.TerminalPrompt(os.Stdin, cmd.ErrOrStderr())}
}

// groupCmd is a command named use that only holds its subcommands.
func groupCmd(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long}
	cmd.AddCommand(subs...)
	return cmd
}

// registerFilter declares the proposal filter flags (country, ip type,
// highest prices) of proposals and connect.
func registerFilter(fs *pflag.FlagSet, country, ipType, maxPriceGiB, maxPriceHour *string) {
	fs.StringVar(country, "country", "", "only this country (ISO 3166-1 alpha-2, e.g. DE)")
	fs.StringVar(ipType, "ip-type", "", "only this ip type: residential, hosting or mobile")
	fs.StringVar(maxPriceGiB, "max-price-gib", "", "highest price per GiB in MYST (e.g. 0.2)")
	fs.StringVar(maxPriceHour, "max-price-hour", "", "highest price per hour in MYST")
}

// leafCmd is a command named use that takes no arguments and runs run.
func leafCmd(use, short string, run func(cmd *cobra.Command) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd) }}
}
