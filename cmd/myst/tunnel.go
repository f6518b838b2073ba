package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/userspace"
)

func newTunnelCmd(a *app) *cobra.Command {
	return groupCmd("tunnel", "WireGuard tunnel tools: userspace client from a wg-quick file, key generation", "",
		newTunnelConnectCmd(a), newTunnelGenkeyCmd(a))
}

func newTunnelConnectCmd(a *app) *cobra.Command {
	var cfgFile, socks, httpAddr string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "connect",
		Short: "Bring up a userspace tunnel from a wg-quick file and serve SOCKS5/HTTP proxies on loopback",
		Long: `connect reads a wg-quick configuration (as exported for a session),
brings the tunnel up without privileges (gVisor netstack), waits for the
WireGuard handshake and serves a SOCKS5 proxy (CONNECT, UDP ASSOCIATE) and
an HTTP proxy (CONNECT, absolute http:// URIs) on loopback until interrupted.
Names are resolved by the config's DNS server through the tunnel.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return node.RunWGQuick(cmd.Context(), cfgFile, userspace.ClientConfig{
				SOCKSListen: socks, HTTPListen: httpAddr, HandshakeTimeout: timeout, Log: a.log,
			}, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgFile, "tunnel.wg-config", "", "wg-quick configuration file of the session (required)")
	f.StringVar(&socks, "tunnel.socks", "127.0.0.1:1080", "SOCKS5 listen address (loopback; empty disables)")
	f.StringVar(&httpAddr, "tunnel.http", "127.0.0.1:8118", "HTTP proxy listen address (loopback; empty disables)")
	f.DurationVar(&timeout, "tunnel.handshake-timeout", tunnel.DefaultHandshakeTimeout, "give up when no WireGuard handshake completes in this time")
	_ = cmd.MarkFlagRequired("tunnel.wg-config")
	return cmd
}

func newTunnelGenkeyCmd(a *app) *cobra.Command {
	return leafCmd("genkey", "Print a new WireGuard private key and its public key (base64, like wg genkey | wg pubkey)", func(cmd *cobra.Command) error {
		k, err := tunnel.GenerateKey()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "private %s\npublic %s\n", k, k.PublicKey())
		return err
	})
}
