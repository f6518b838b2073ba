// Command myst is the openmyst node: provider, consumer, hermes, dev chain
// and devnet in one binary. Every subcommand only parses flags and config
// and wires packages together; the work happens in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd(&app{log: slog.Default()}).ExecuteContext(ctx); err != nil {
		if !errors.Is(err, context.Canceled) {
			fmt.Fprintf(os.Stderr, "myst: %v\n", err)
		}
		os.Exit(1)
	}
}
