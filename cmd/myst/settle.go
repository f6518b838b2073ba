package main

import (
	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/node"
)

func newServiceSettlementsCmd(a *app) *cobra.Command {
	var wei bool
	cmd := leafCmd("settlements", "List the provider's settlement attempts (GET /settlements on a running service or daemon, else from <data-dir>/provider)", func(cmd *cobra.Command) error {
		list, err := a.local(cmd).Settlements(cmd.Context())
		if err != nil {
			return err
		}
		return node.WriteSettlements(cmd.OutOrStdout(), list, wei)
	})
	cmd.Flags().BoolVar(&wei, "wei", false, "show amounts in wei")
	return cmd
}
