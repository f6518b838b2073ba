package main

import (
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/money"
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
				if req.SOCKSListen != "" {
					return errors.New("--tun and --proxy exclude each other")
				}
				if tun.standalone {
					return runConnectTun(cmd, req, &tun)
				}
				req.Mode, req.KillSwitch, req.DNS, req.DNSServers = tequilapi.ModeTun, tun.killSwitch, tun.dns, tun.dnsServers
				if err := req.Validate(); err != nil {
					return err
				}
			}
			c, err := a.daemonClient(cmd.Context())
			if err != nil {
				return fmt.Errorf("%w: start `myst daemon` first", err)
			}
			var st tequilapi.ConnectionStatus
			if err := c.Do(cmd.Context(), http.MethodPut, "/connection", req, &st); err != nil {
				return err
			}
			if st.Mode == tequilapi.ModeTun {
				ks := "no kill switch"
				if st.KillSwitch != nil && st.KillSwitch.Setting != tequilapi.KillSwitchOff {
					ks = "kill switch " + st.KillSwitch.Setting
				}
				fmt.Fprintf(cmd.OutOrStdout(), "connected to %s (%s) over the %s path: the whole device through %s, %s, DNS %s; `myst disconnect` ends it\n",
					st.Provider, st.Country, st.Path, st.Interface, ks, st.DNS)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "connected to %s (%s) over the %s path; SOCKS5 proxy on %s\n", st.Provider, st.Country, st.Path, st.SOCKS)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Country, "country", "", "provider country (ISO 3166-1 alpha-2)")
	fl.StringVar(&req.IPType, "ip-type", "", "residential, hosting or mobile")
	fl.StringVar(&req.MaxPriceGiB, "max-price-gib", "", "highest price per GiB in MYST")
	fl.StringVar(&req.MaxPriceHour, "max-price-hour", "", "highest price per hour in MYST")
	fl.StringVar(&req.SOCKSListen, "proxy", "", "local SOCKS5 proxy address (default: the daemon's --consumer.socks)")
	tun.register(fl)
	return cmd
}

func newDisconnectCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "disconnect",
		Short: "Disconnect the daemon's connection (DELETE /connection)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.daemonClient(cmd.Context())
			if err != nil {
				return fmt.Errorf("%w: start `myst daemon` first", err)
			}
			if err := c.Do(cmd.Context(), http.MethodDelete, "/connection", nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "disconnected")
			return nil
		},
	}
}

func newStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the daemon's connection: provider, duration, bytes, spent, rate (GET /connection)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.daemonClient(cmd.Context())
			if err != nil {
				return fmt.Errorf("%w: start `myst daemon` first", err)
			}
			var st tequilapi.ConnectionStatus
			if err := c.Do(cmd.Context(), http.MethodGet, "/connection", nil, &st); err != nil {
				return err
			}
			return printStatus(cmd.OutOrStdout(), st)
		},
	}
}

func printStatus(w io.Writer, st tequilapi.ConnectionStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	state := "connected"
	if !st.Running {
		state = "ended " + st.Error
	}
	wei := func(s string) string {
		if v, ok := new(big.Int).SetString(s, 10); ok {
			return money.FormatMYST(v) + " MYST"
		}
		return s
	}
	if st.State != "" && st.State != "connected" {
		state = st.State
		if st.Error != "" {
			state += " (" + st.Error + ")"
		}
	}
	if st.Mode == tequilapi.ModeTun {
		fmt.Fprintf(tw, "mode\ttun (%s, endpoint %s)\ndns\t%s %s\n", st.Interface, st.Endpoint, st.DNS, strings.Join(st.DNSServers, " "))
		if k := st.KillSwitch; k != nil {
			fmt.Fprintf(tw, "kill switch\t%s, active %v, exempt: %s\n", k.Setting, k.Active, strings.Join(k.Exemptions, ", "))
		}
	}
	fmt.Fprintf(tw, "state\t%s\nprovider\t%s (%s)\npath\t%s\nsocks5\t%s\nduration\t%s\nbytes\t%d down, %d up\nspent\t%s\nrate\t%s per hour\n",
		state, st.Provider, st.Country, st.Path, st.SOCKS, (time.Duration(st.DurationSeconds * float64(time.Second))).Round(time.Second),
		st.RxBytes, st.TxBytes, wei(st.Spent), wei(st.RatePerHour))
	return tw.Flush()
}
