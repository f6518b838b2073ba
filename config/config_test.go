package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// newTree builds root --data-dir --log-level, child "daemon" with
// --tequilapi.port, --p2p.bootstrap (slice) and --verbose.
func newTree(t *testing.T, dataDir string, args []string, env map[string]string) (*cobra.Command, error) {
	t.Helper()
	root := &cobra.Command{Use: "myst", SilenceErrors: true, SilenceUsage: true}
	root.PersistentFlags().String(DataDirFlag, dataDir, "")
	root.PersistentFlags().String("log-level", "info", "")
	child := &cobra.Command{Use: "daemon", RunE: func(*cobra.Command, []string) error { return nil }}
	child.Flags().Int("tequilapi.port", 4050, "")
	child.Flags().StringSlice("p2p.bootstrap", nil, "")
	child.Flags().Bool("verbose", false, "")
	other := &cobra.Command{Use: "hermes", RunE: func(*cobra.Command, []string) error { return nil }}
	other.Flags().String("hermes.db", "", "")
	root.AddCommand(child, other)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		dd, _ := cmd.Flags().GetString(DataDirFlag)
		return Resolve(cmd, dd, func(k string) string { return env[k] })
	}
	root.SetArgs(args)
	err := root.Execute()
	return child, err
}

func writeConfig(t *testing.T, dir, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"tequilapi.port": "MYST_TEQUILAPI_PORT", "log-level": "MYST_LOG_LEVEL", "data-dir": "MYST_DATA_DIR"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "log-level = \"warn\"\n\"p2p.bootstrap\" = [\"/ip4/1.2.3.4/tcp/1\", \"/ip4/5.6.7.8/tcp/2\"]\nverbose = true\n[tequilapi]\nport = 1111\n[hermes]\ndb = \"x\"\n")

	// defaults < file
	c, err := newTree(t, dir, []string{"daemon"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Flags().GetInt("tequilapi.port"); p != 1111 {
		t.Errorf("port from file = %d, want 1111", p)
	}
	if l, _ := c.Flags().GetString("log-level"); l != "warn" {
		t.Errorf("log-level from file = %q", l)
	}
	if b, _ := c.Flags().GetStringSlice("p2p.bootstrap"); len(b) != 2 || b[1] != "/ip4/5.6.7.8/tcp/2" {
		t.Errorf("bootstrap from file = %v", b)
	}
	if v, _ := c.Flags().GetBool("verbose"); !v {
		t.Error("bool from file not applied")
	}

	// file < env
	c, err = newTree(t, dir, []string{"daemon"}, map[string]string{"MYST_TEQUILAPI_PORT": "2222", "MYST_LOG_LEVEL": "debug"})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Flags().GetInt("tequilapi.port"); p != 2222 {
		t.Errorf("port from env = %d, want 2222", p)
	}
	if l, _ := c.Flags().GetString("log-level"); l != "debug" {
		t.Errorf("log-level from env = %q", l)
	}

	// env < flag
	c, err = newTree(t, dir, []string{"daemon", "--tequilapi.port", "3333"}, map[string]string{"MYST_TEQUILAPI_PORT": "2222"})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Flags().GetInt("tequilapi.port"); p != 3333 {
		t.Errorf("port from flag = %d, want 3333", p)
	}
}

func TestDefaultsWithoutFile(t *testing.T) {
	c, err := newTree(t, t.TempDir(), []string{"daemon"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Flags().GetInt("tequilapi.port"); p != 4050 {
		t.Errorf("default port = %d", p)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"unknown key", "tequilapi.prot = 1\n", nil, "unknown keys tequilapi.prot"},
		{"data-dir in file", "data-dir = \"/x\"\n", nil, "can only be set with --data-dir"},
		{"bad toml", "port = \n", nil, "parse"},
		{"bad type in file", "[tequilapi]\nport = \"abc\"\n", nil, "tequilapi.port"},
		{"array for scalar", "[tequilapi]\nport = [1, 2]\n", nil, "array given"},
		{"bad env", "", map[string]string{"MYST_TEQUILAPI_PORT": "x"}, "MYST_TEQUILAPI_PORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, tc.file)
			_, err := newTree(t, dir, []string{"daemon"}, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
