package config

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runRoot runs a root with AddRootFlags and a "run" child with --x, and
// returns what ResolveDataDir, DataDirGiven and FlagLogger gave the child.
func runRoot(t *testing.T, args ...string) (dir string, given bool, x string, err error) {
	t.Helper()
	var dataDir string
	root := &cobra.Command{Use: "myst", SilenceErrors: true, SilenceUsage: true}
	AddRootFlags(root.PersistentFlags(), &dataDir)
	child := &cobra.Command{Use: "run", RunE: func(cmd *cobra.Command, _ []string) error {
		if dir, err = ResolveDataDir(cmd, dataDir); err != nil {
			return err
		}
		given = DataDirGiven(cmd)
		x, _ = cmd.Flags().GetString("x")
		_, err = FlagLogger(cmd)
		return err
	}}
	child.Flags().String("x", "default", "")
	root.AddCommand(child)
	root.SetArgs(args)
	err = root.Execute()
	return dir, given, x, err
}

// TestResolveDataDir: --data-dir beats $MYST_DATA_DIR beats the default;
// the result is absolute and its config file fills the other flags; an
// empty data dir and a bad log level are refused.
func TestResolveDataDir(t *testing.T) {
	flagDir, envDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(flagDir, FileName), []byte("x = \"fromfile\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MYST_DATA_DIR", envDir)
	dir, given, x, err := runRoot(t, "run", "--data-dir", flagDir)
	if err != nil || dir != flagDir || !given || x != "fromfile" {
		t.Fatalf("flag: %q %v %q %v", dir, given, x, err)
	}
	if dir, given, x, err = runRoot(t, "run"); err != nil || dir != envDir || !given || x != "default" {
		t.Fatalf("env: %q %v %q %v", dir, given, x, err)
	}
	t.Setenv("MYST_DATA_DIR", "")
	t.Setenv("HOME", t.TempDir())
	if dir, given, _, err = runRoot(t, "run"); err != nil || dir != DefaultDataDir() || given {
		t.Fatalf("default: %q %v %v", dir, given, err)
	}
	if !filepath.IsAbs(dir) {
		t.Fatalf("default %q is not absolute", dir)
	}
	if _, _, _, err = runRoot(t, "run", "--data-dir", ""); err == nil || !strings.Contains(err.Error(), "empty --data-dir") {
		t.Fatalf("empty: %v", err)
	}
	if _, _, _, err = runRoot(t, "run", "--data-dir", flagDir, "--log-level", "loud"); err == nil {
		t.Fatal("bad log level accepted")
	}
}

// TestQuietLogger: warnings only unless --log-level was given, then the
// logger the flags made.
func TestQuietLogger(t *testing.T) {
	var dataDir string
	root := &cobra.Command{Use: "myst"}
	AddRootFlags(root.PersistentFlags(), &dataDir)
	own := slog.New(slog.DiscardHandler)
	q := QuietLogger(root, own)
	if q == own || q.Enabled(context.Background(), slog.LevelInfo) || !q.Enabled(context.Background(), slog.LevelWarn) {
		t.Fatal("not a warnings-only logger without --log-level")
	}
	if err := root.PersistentFlags().Set("log-level", "debug"); err != nil {
		t.Fatal(err)
	}
	if QuietLogger(root, own) != own {
		t.Fatal("--log-level given, yet not its logger")
	}
}
