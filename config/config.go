package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// FileName is the config file inside the data dir.
const FileName = "config.toml"

// EnvPrefix prefixes every environment variable that sets a flag.
const EnvPrefix = "MYST_"

// DataDirFlag is the flag that locates the data dir (flag or env only).
const DataDirFlag = "data-dir"

// skipFlags are cobra's own flags, never read from env or file.
var skipFlags = map[string]bool{"help": true, "version": true}

// EnvName returns the environment variable for flag name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(name))
}

// File is a parsed config file: flag name → value.
type File struct {
	// Path is where the file was read from.
	Path string
	// Values maps dotted flag names to TOML values.
	Values map[string]any
}

// LoadFile reads and flattens the TOML file at path. A missing file gives
// an empty File and no error.
func LoadFile(path string) (*File, error) {
	f := &File{Path: path, Values: map[string]any{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, fmt.Errorf("config: parse %s: %w", path, err)
	}
	flatten("", raw, f.Values)
	return f, nil
}

func flatten(prefix string, in map[string]any, out map[string]any) {
	for k, v := range in {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(name, sub, out)
			continue
		}
		out[name] = v
	}
}

// Resolve fills every flag of cmd (its own and inherited ones) that was
// not set on the command line from the environment (getenv, os.Getenv if
// nil) and then from the config file in dataDir. Keys in the file that
// are no flag of any command under cmd's root are an error.
func Resolve(cmd *cobra.Command, dataDir string, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	file, err := LoadFile(filepath.Join(dataDir, FileName))
	if err != nil {
		return err
	}
	if err := checkKnown(cmd.Root(), file); err != nil {
		return err
	}
	return Apply(cmd.Flags(), file, getenv)
}

// checkKnown rejects file keys that no command declares.
func checkKnown(root *cobra.Command, file *File) error {
	known := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) { known[f.Name] = true }
		c.LocalFlags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	var unknown []string
	for k := range file.Values {
		if k == DataDirFlag {
			return fmt.Errorf("config: %s: %s can only be set with --%s or %s", file.Path, k, DataDirFlag, EnvName(DataDirFlag))
		}
		if !known[k] || skipFlags[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config: %s: unknown keys %s (keys are flag names, e.g. tequilapi.port)", file.Path, strings.Join(unknown, ", "))
	}
	return nil
}

// Apply sets every flag in fs that is not Changed from getenv, then from
// file (which may be nil).
func Apply(fs *pflag.FlagSet, file *File, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || skipFlags[f.Name] {
			return
		}
		env := EnvName(f.Name)
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("config: %s=%q: %w", env, v, err))
			}
			return
		}
		if f.Name == DataDirFlag || file == nil {
			return
		}
		v, ok := file.Values[f.Name]
		if !ok {
			return
		}
		if err := setFromTOML(fs, f, v); err != nil {
			errs = append(errs, fmt.Errorf("config: %s: %s: %w", file.Path, f.Name, err))
		}
	})
	return errors.Join(errs...)
}

func setFromTOML(fs *pflag.FlagSet, f *pflag.Flag, v any) error {
	if arr, ok := v.([]any); ok {
		parts := make([]string, 0, len(arr))
		for _, e := range arr {
			s, err := scalar(e)
			if err != nil {
				return err
			}
			parts = append(parts, s)
		}
		if f.Value.Type() == "stringArray" {
			for _, p := range parts {
				if err := fs.Set(f.Name, p); err != nil {
					return err
				}
			}
			return nil
		}
		if _, isSlice := f.Value.(pflag.SliceValue); !isSlice {
			return fmt.Errorf("array given for %s flag", f.Value.Type())
		}
		return fs.Set(f.Name, strings.Join(parts, ","))
	}
	s, err := scalar(v)
	if err != nil {
		return err
	}
	return fs.Set(f.Name, s)
}

func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	default:
		return "", fmt.Errorf("unsupported value %v (%T)", v, v)
	}
}
