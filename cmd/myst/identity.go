package main

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/node"
)

func newIdentityCmd(a *app) *cobra.Command {
	return groupCmd("identity", "Create, list, import, export identities; sign and verify", `Identities are Ethereum addresses whose keys live in <data-dir>/keystore
(go-ethereum scrypt JSON). When a daemon for the data dir is running, new,
list and sign go through its Tequilapi; otherwise they work on the keystore
directly.

Passphrases come from --passphrase-file, or $MYST_PASSPHRASE, or a prompt
without echo when stdin is a terminal.`,
		newIdentityNewCmd(a), newIdentityListCmd(a), newIdentityImportCmd(a),
		newIdentityExportCmd(a), newIdentitySignCmd(a), newIdentityVerifyCmd(a), newIdentitySetDefaultCmd(a))
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
	return a.identityCmd("set-default ADDRESS", "Make ADDRESS the node's default identity", 1, func(cmd *cobra.Command, addr common.Address, _ []string) error {
		return a.local(cmd).WithIdentities(cmd.Context(), true, func(api node.IdentityAPI) error {
			if _, err := api.SetDefault(cmd.Context(), addr); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "default identity: %s\n", addr.Hex())
			return nil
		})
	})
}

// identityCmd is a command of n arguments, the first an identity address
// (completed from the keystore); run gets it parsed, and the others.
func (a *app) identityCmd(use, short string, n int, run func(cmd *cobra.Command, addr common.Address, rest []string) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(n), ValidArgsFunction: a.completeIdentity,
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := identity.ParseAddress(args[0])
			if err != nil {
				return err
			}
			return run(cmd, addr, args[1:])
		}}
}

func newIdentityNewCmd(a *app) *cobra.Command {
	var passFile string
	var setDefault bool
	cmd := leafCmd("new", "Create an identity and print its address", func(cmd *cobra.Command) error {
		id, err := a.local(cmd).CreateIdentity(cmd.Context(), passFile, setDefault)
		if err == nil {
			fmt.Fprintln(cmd.OutOrStdout(), id.ID)
		}
		return err
	})
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from this file")
	cmd.Flags().BoolVar(&setDefault, "set-default", false, "make it the default identity")
	return cmd
}

func newIdentityListCmd(a *app) *cobra.Command {
	return leafCmd("list", "List identities: address and flags (default, unlocked)", func(cmd *cobra.Command) error {
		return a.local(cmd).WithIdentities(cmd.Context(), true, func(api node.IdentityAPI) error {
			ids, err := api.Identities(cmd.Context())
			for _, id := range ids {
				fmt.Fprintln(cmd.OutOrStdout(), id.Line())
			}
			return err
		})
	})
}

func newIdentityImportCmd(a *app) *cobra.Command {
	var passFile string
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import a keystore JSON file (keeps its passphrase)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := a.local(cmd).ImportIdentity(cmd.Context(), args[0], passFile)
			if err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), addr.Hex())
			}
			return err
		},
	}
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the key file's passphrase from this file")
	return cmd
}

func newIdentityExportCmd(a *app) *cobra.Command {
	var outFile string
	cmd := a.identityCmd("export ADDRESS", "Print the identity's keystore JSON (encrypted with its passphrase)", 1, func(cmd *cobra.Command, addr common.Address, _ []string) error {
		data, err := a.local(cmd).ExportIdentity(addr, outFile)
		if err == nil && outFile == "" {
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(data))
		}
		return err
	})
	cmd.Flags().StringVar(&outFile, "out", "", "write to this new file (mode 0600) instead of stdout")
	return cmd
}

func newIdentitySignCmd(a *app) *cobra.Command {
	var passFile string
	cmd := a.identityCmd("sign ADDRESS MESSAGE", "Sign MESSAGE (Ethereum signed-message prefix); prints the 0x signature", 2, func(cmd *cobra.Command, addr common.Address, rest []string) error {
		// Unlocked in the daemon, or (always, locally) after asking.
		sig, err := a.local(cmd).Sign(cmd.Context(), addr, rest[0], passFile)
		if err == nil {
			fmt.Fprintln(cmd.OutOrStdout(), hexutil.Encode(sig))
		}
		return err
	})
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from this file (if the identity must be unlocked)")
	return cmd
}

func newIdentityVerifyCmd(a *app) *cobra.Command {
	return a.identityCmd("verify ADDRESS MESSAGE SIGNATURE", "Check that SIGNATURE over MESSAGE was made by ADDRESS (exit 1 if not)", 3, func(cmd *cobra.Command, addr common.Address, rest []string) error {
		err := identity.VerifyHex(addr, []byte(rest[0]), rest[1])
		if err == nil {
			fmt.Fprintf(cmd.OutOrStdout(), "valid signature by %s\n", addr.Hex())
		}
		return err
	})
}
