package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/node"
)

func newRelayCmd(a *app) *cobra.Command {
	var cfg node.RelayConfig
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Run the network's relay role: STUN and TURN (UDP, TCP, TLS)",
		Long: `Runs STUN (nodes learn their public address; on two UDP ports, which
tell a node's NAT mapping) and TURN (a session's
WireGuard datagrams relayed when no direct path exists through the NATs on
both sides). The relay sees only WireGuard ciphertext; each allocation is
capped (--relay.bandwidth), allocations are bounded, and it never relays to
its own host's loopback, private, link-local or multicast addresses.

Nodes authenticate with time-limited credentials made from the relay's
secret (<data-dir>/relay/relay.secret, created on first start):
  myst relay credentials --user NAME`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.DataDir, cfg.Log = filepath.Join(a.dataDir, "relay"), a.log
			return node.RunRelay(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.UDP, "relay.udp", ":3478", "STUN and TURN over UDP listen address (empty: off)")
	fl.StringVar(&cfg.STUNAlt, "relay.stun-alt", ":3479", "alternate STUN-only UDP listen address: with --relay.udp's port, two destinations that tell a node's NAT mapping; list both in the network file (empty: off)")
	fl.StringVar(&cfg.TCP, "relay.tcp", ":3478", "TURN over TCP listen address (empty: off)")
	fl.StringVar(&cfg.TLS, "relay.tls", "", "TURN over TLS listen address, e.g. :5349 (with --tls.cert and --tls.key)")
	fl.StringVar(&cfg.CertFile, "tls.cert", "", "PEM certificate chain for TURN over TLS")
	fl.StringVar(&cfg.KeyFile, "tls.key", "", "PEM private key of --tls.cert")
	fl.TextVar(&cfg.PublicIP, "relay.public-ip", netip.Addr{}, "the relay's public IP address: allocations are reachable there (required)")
	fl.IntVar(&cfg.Bandwidth, "relay.bandwidth", 0, "bytes per second each way per allocation (0: 50 Mbit/s)")
	fl.IntVar(&cfg.MaxAllocations, "relay.max-allocations", 0, "allocations held at once at most (0: 1000)")
	fl.BoolVar(&cfg.AllowPrivate, "relay.allow-private", false, "loopback devnets only: a private public-ip, and relaying to private and loopback addresses")
	cmd.AddCommand(newRelayCredentialsCmd(a))
	return cmd
}

func newRelayCredentialsCmd(a *app) *cobra.Command {
	var user string
	var ttl time.Duration
	cmd := leafCmd("credentials", "Print TURN credentials made from this relay's secret", func(cmd *cobra.Command) error {
		u, p, err := node.RelayCredentials(filepath.Join(a.dataDir, "relay"), user, ttl)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "username: %s\npassword: %s\nexpires:  %s\n", u, p, time.Now().Add(ttl).UTC().Format(time.RFC3339))
		return nil
	})
	cmd.Flags().StringVar(&user, "user", "node", "who the credentials are for (part of the username)")
	cmd.Flags().DurationVar(&ttl, "ttl", 12*time.Hour, "how long they are valid")
	return cmd
}
