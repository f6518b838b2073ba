package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/node"
)

func newIdentityCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Create, list, import, export identities; sign and verify",
		Long: `Identities are Ethereum addresses whose keys live in <data-dir>/keystore
(go-ethereum scrypt JSON). When a daemon for the data dir is running, new,
list and sign go through its Tequilapi; otherwise they work on the keystore
directly.

Passphrases come from --passphrase-file, or $MYST_PASSPHRASE, or a prompt
without echo when stdin is a terminal.`,
	}
	cmd.AddCommand(newIdentityNewCmd(a), newIdentityListCmd(a), newIdentityImportCmd(a),
		newIdentityExportCmd(a), newIdentitySignCmd(a), newIdentityVerifyCmd(a), newIdentitySetDefaultCmd(a))
	return cmd
}

// completeIdentity completes the first argument with the keystore's
// addresses (read from the files; needs no passphrase or daemon).
func (a *app) completeIdentity(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out, err := a.local(cmd).KeystoreAddresses(context.Background())
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func newIdentitySetDefaultCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "set-default ADDRESS",
		Short:             "Make ADDRESS the node's default identity",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeIdentity,
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := identity.ParseAddress(args[0])
			if err != nil {
				return err
			}
			return a.local(cmd).WithIdentities(cmd.Context(), true, func(api node.IdentityAPI) error {
				if _, err := api.SetDefault(cmd.Context(), addr); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "default identity: %s\n", addr.Hex())
				return nil
			})
		},
	}
}

func newIdentityNewCmd(a *app) *cobra.Command {
	var passFile string
	var setDefault bool
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Create an identity and print its address",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pw, err := a.local(cmd).Passphrase(passFile, "Passphrase for the new identity", true)
			if err != nil {
				return err
			}
			return a.local(cmd).WithIdentities(cmd.Context(), true, func(api node.IdentityAPI) error {
				id, err := api.CreateIdentity(ctx, pw, setDefault)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), id.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from this file")
	cmd.Flags().BoolVar(&setDefault, "set-default", false, "make it the default identity")
	return cmd
}

func newIdentityListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List identities: address and flags (default, unlocked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.local(cmd).WithIdentities(cmd.Context(), true, func(api node.IdentityAPI) error {
				ids, err := api.Identities(cmd.Context())
				for _, id := range ids {
					var tags []string
					if id.Default {
						tags = append(tags, "default")
					}
					if id.Unlocked {
						tags = append(tags, "unlocked")
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", id.ID, strings.Join(tags, ","))
				}
				return err
			})
		},
	}
}

func newIdentityImportCmd(a *app) *cobra.Command {
	var passFile string
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import a keystore JSON file (keeps its passphrase)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read key file: %w", err)
			}
			pw, err := a.local(cmd).Passphrase(passFile, "Passphrase of the key file", false)
			if err != nil {
				return err
			}
			// Import writes a new key file; a running daemon re-reads the
			// keystore directory, so this works with or without one.
			return a.local(cmd).WithKeystore(false, func(m *identity.Manager) error {
				id, err := m.Import(ctx, data, pw, pw)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), id.Address.Hex())
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the key file's passphrase from this file")
	return cmd
}

func newIdentityExportCmd(a *app) *cobra.Command {
	var outFile string
	cmd := &cobra.Command{
		Use:               "export ADDRESS",
		ValidArgsFunction: a.completeIdentity,
		Short:             "Print the identity's keystore JSON (encrypted with its passphrase)",
		Args:              cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := identity.ParseAddress(args[0])
			if err != nil {
				return err
			}
			m, err := node.NewIdentityManager(a.dataDir, nil, a.lightScrypt)
			if err != nil {
				return err
			}
			data, err := m.Export(addr)
			if err != nil {
				return err
			}
			if outFile != "" {
				f, err := os.OpenFile(outFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				if _, err := f.Write(data); err != nil {
					f.Close()
					return fmt.Errorf("export: %w", err)
				}
				return f.Close()
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(data))
			return err
		},
	}
	cmd.Flags().StringVar(&outFile, "out", "", "write to this new file (mode 0600) instead of stdout")
	return cmd
}

func newIdentitySignCmd(a *app) *cobra.Command {
	var passFile string
	cmd := &cobra.Command{
		Use:               "sign ADDRESS MESSAGE",
		ValidArgsFunction: a.completeIdentity,
		Short:             "Sign MESSAGE (Ethereum signed-message prefix); prints the 0x signature",
		Args:              cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			addr, err := identity.ParseAddress(args[0])
			if err != nil {
				return err
			}
			// Unlocked in the daemon, or (always, locally) after asking.
			return a.local(cmd).WithIdentities(cmd.Context(), false, func(api node.IdentityAPI) error {
				if err := a.local(cmd).Unlocked(ctx, api, addr, passFile); err != nil {
					return err
				}
				sig, err := api.Sign(ctx, addr, args[1])
				if err == nil {
					fmt.Fprintln(cmd.OutOrStdout(), hexutil.Encode(sig))
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from this file (if the identity must be unlocked)")
	return cmd
}

func newIdentityVerifyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "verify ADDRESS MESSAGE SIGNATURE",
		ValidArgsFunction: a.completeIdentity,
		Short:             "Check that SIGNATURE over MESSAGE was made by ADDRESS (exit 1 if not)",
		Args:              cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := identity.ParseAddress(args[0])
			if err != nil {
				return err
			}
			sig, err := hexutil.Decode(args[2])
			if err != nil {
				return fmt.Errorf("signature %q: want 0x-prefixed hex: %w", args[2], err)
			}
			if err := identity.Verify(addr, []byte(args[1]), sig); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "valid signature by %s\n", addr.Hex())
			return nil
		},
	}
}
