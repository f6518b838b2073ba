package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// DefaultDataDir is ~/.myst, or .myst when there is no home directory.
func DefaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".myst"
	}
	return filepath.Join(home, ".myst")
}

// AddRootFlags declares a root command's persistent --data-dir (into
// dataDir, default DefaultDataDir), --log-level and --log-format.
func AddRootFlags(pf *pflag.FlagSet, dataDir *string) {
	pf.StringVar(dataDir, DataDirFlag, DefaultDataDir(), "directory for keys, databases and config (flag or MYST_DATA_DIR only)")
	pf.String("log-level", "info", "log level: debug, info, warn, error")
	pf.String("log-format", "text", "log format: text or json")
}

// DataDirGiven reports whether cmd's data dir was chosen explicitly:
// --data-dir or $MYST_DATA_DIR.
func DataDirGiven(cmd *cobra.Command) bool {
	f := cmd.Flag(DataDirFlag)
	return (f != nil && f.Changed) || os.Getenv(EnvName(DataDirFlag)) != ""
}

// ResolveDataDir returns cmd's data dir, absolute: the --data-dir flag
// when given, else $MYST_DATA_DIR, else dataDir (the flag's default);
// then fills cmd's other flags from the environment and the data dir's
// config file (Resolve).
func ResolveDataDir(cmd *cobra.Command, dataDir string) (string, error) {
	if !cmd.Flags().Changed(DataDirFlag) {
		if v := os.Getenv(EnvName(DataDirFlag)); v != "" {
			dataDir = v
		}
	}
	if dataDir == "" {
		return "", fmt.Errorf("empty --%s", DataDirFlag)
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("data dir %q: %w", dataDir, err)
	}
	return abs, Resolve(cmd, abs, nil)
}

// FlagLogger is the logger of cmd's --log-level and --log-format,
// writing to cmd's stderr (NewLogger).
func FlagLogger(cmd *cobra.Command) (*slog.Logger, error) {
	level, _ := cmd.Flags().GetString("log-level")
	format, _ := cmd.Flags().GetString("log-format")
	return NewLogger(cmd.ErrOrStderr(), level, format)
}

// QuietLogger is log when cmd's --log-level was given, else a logger of
// warnings only to stderr: in-process networks (devnet, demo) keep their
// progress and reports readable.
func QuietLogger(cmd *cobra.Command, log *slog.Logger) *slog.Logger {
	if f := cmd.Flag("log-level"); f != nil && f.Changed {
		return log
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
