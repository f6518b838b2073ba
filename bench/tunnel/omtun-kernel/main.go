// Command omtun-kernel runs an openmyst kernel-mode exit or client for the
// tunnel benchmark (bench/tunnel/run.sh). It prints READY once the tunnel
// is up and tears everything down on SIGTERM or SIGINT.
//
//	omtun-kernel exit   -key K -port P [-peer PUB -peer-ip A] [-idle-peers N] [-offload]
//	omtun-kernel client -key K -peer PUB -endpoint HOST:PORT -addr A/32
package main

import (
	"context"
	"log/slog"

	"github.com/openmyst/openmyst/bench/tunnel/omtun"
	"github.com/openmyst/openmyst/tunnel/kernel"
)

func main() { omtun.Main("omtun-kernel", runExit, runClient) }

func runExit(ctx context.Context, args []string, log *slog.Logger) error {
	f := omtun.NewExitFlags()
	offload := f.Bool("offload", false, "add the nftables flowtable (ExitConfig.FlowOffload)")
	priv, pool, err := f.ParseKeyAndPool(args)
	if err != nil {
		return err
	}
	e, err := kernel.NewExit(ctx, kernel.ExitConfig{PrivateKey: priv, ListenPort: f.Port(), Pool: pool, FlowOffload: *offload, Log: log})
	if err != nil {
		return err
	}
	return f.Serve(ctx, e, pool)
}

func runClient(ctx context.Context, args []string, log *slog.Logger) error {
	s, err := omtun.NewClientFlags().ParseSession(args)
	if err != nil {
		return err
	}
	c, err := kernel.Connect(ctx, kernel.ClientConfig{Session: s, Log: log})
	if err != nil {
		return err
	}
	return omtun.Wait(ctx, c)
}
