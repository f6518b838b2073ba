package main

import (
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/buildinfo"
)

// app is what every subcommand needs once flags, environment and config
// file have been resolved (see PersistentPreRunE).
type app struct {
	dataDir string
	log     *slog.Logger
}

// theApp is filled by the root command's PersistentPreRunE before any
// subcommand runs.
var theApp = &app{log: slog.Default()}

func defaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".myst"
	}
	return filepath.Join(home, ".myst")
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "myst",
		Short:         "openmyst: a decentralized pay-as-you-go VPN node",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.String(),
	}
	pf := root.PersistentFlags()
	pf.StringVar(&theApp.dataDir, "data-dir", defaultDataDir(), "directory for keys, databases and config")
	pf.String("log-level", "info", "log level: debug, info, warn, error")
	pf.String("log-format", "text", "log format: text or json")

	// Each capability adds its command here, one line each.
	root.AddCommand(
		newVersionCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write([]byte(buildinfo.String() + "\n"))
			return err
		},
	}
}
