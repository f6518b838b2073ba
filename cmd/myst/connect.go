package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/tequilapi"
)

func newConnectCmd(a *app) *cobra.Command {
	var req tequilapi.ConnectRequest
	tun := tunFlags{acct: accountFlags{app: a}}
	cmd := &cobra.Command{
		Use:   "connect [PROVIDER_ID]",
		Short: "Connect through the running daemon (PUT /connection): a local SOCKS5 proxy, or with --tun the whole device through the daemon's kernel tunnel",
		Example: `  myst connect --country DE --max-price-gib 0.2
  myst connect 0xd6F8612193c308Cf6FfEd67911C907213e345BC0 --proxy 127.0.0.1:1080
  myst connect --tun --country DE --kill-switch always --dns custom --dns.servers 9.9.9.9   # the daemon needs CAP_NET_ADMIN
  sudo myst connect --tun --standalone --country DE --p2p.bootstrap /ip4/.../tcp/4001/p2p/...   # no daemon: foreground until Ctrl-C`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				req.ProviderID = args[0]
			}
			if err := req.Validate(); err != nil {
				return err
			}
			if tun.on {
				req.Mode, req.KillSwitch, req.DNS, req.DNSServers = tequilapi.ModeTun, tun.killSwitch, tun.dns, tun.dnsServers
				if err := req.Validate(); err != nil {
					return err
				}
				if tun.standalone {
					return runConnectTun(cmd, req, &tun)
				}
			}
			c, err := a.daemonClient(cmd)
			if err != nil {
				return err
			}
			st, err := c.Connect(cmd.Context(), req)
			if err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), st.Connected())
			}
			return err
		},
	}
	fl := cmd.Flags()
	registerFilter(fl, &req.Country, &req.IPType, &req.MaxPriceGiB, &req.MaxPriceHour)
	fl.StringVar(&req.SOCKSListen, "proxy", "", "local SOCKS5 proxy address (default: the daemon's --consumer.socks)")
	tun.register(fl)
	return cmd
}

func newDisconnectCmd(a *app) *cobra.Command {
	return leafCmd("disconnect", "Disconnect the daemon's connection (DELETE /connection)", func(cmd *cobra.Command) error {
		c, err := a.daemonClient(cmd)
		if err != nil {
			return err
		}
		if err = c.Disconnect(cmd.Context()); err == nil {
			fmt.Fprintln(cmd.OutOrStdout(), "disconnected")
		}
		return err
	})
}

func newStatusCmd(a *app) *cobra.Command {
	return leafCmd("status", "Show the daemon's connection (provider, duration, bytes, spent, rate) and its reachability (GET /connection, GET /nat)", func(cmd *cobra.Command) error {
		c, err := a.daemonClient(cmd)
		if err != nil {
			return err
		}
		return c.PrintStatus(cmd.Context(), cmd.OutOrStdout())
	})
}
