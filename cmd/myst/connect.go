package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/node"
	mystsession "github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/tequilapi"
)

// consumerFlags configure the daemon's consumer (PUT /connection).
type consumerFlags struct {
	identity, passFile, socks string
}

var consFlags consumerFlags

func init() {
	registerDaemonExtension(daemonExtension{
		Name: "connection",
		Flags: func(fs *pflag.FlagSet) {
			f := &consFlags
			fs.StringVar(&f.identity, "consumer.identity", "", "consumer identity paying for connections (default: the default identity)")
			fs.StringVar(&f.passFile, "consumer.passphrase-file", "", "file with the consumer identity's passphrase (or $"+passphraseEnv+")")
			fs.StringVar(&f.socks, "consumer.socks", "127.0.0.1:1080", "default local SOCKS5 proxy address of a connection")
		},
		Start: startConnection,
	})
}

// startConnection adds PUT/GET/DELETE /connection and GET /sessions. The
// consumer (its database under <data-dir>/consumer) starts on the first
// connect, on the daemon's chain source and its one p2p host, so a daemon
// without a chain still runs.
func startConnection(ctx context.Context, n *daemonNode) (func(context.Context) error, error) {
	f := consFlags
	var (
		mu   sync.Mutex
		cons *node.Consumer
	)
	get := func(rctx context.Context) (*node.Consumer, error) {
		mu.Lock()
		defer mu.Unlock()
		if cons != nil {
			return cons, nil
		}
		c, err := startDaemonConsumer(ctx, rctx, n, f)
		if err != nil {
			return nil, err
		}
		cons = c
		return c, nil
	}
	api := &node.ConnectionAPI{Consumer: get, DefaultSOCKS: f.socks}
	n.API.Add(tequilapi.ConnectionRoutes(api, n.Log)...)
	n.API.Add(tequilapi.SessionRoutes(node.HistoryAPI{History: func() *mystsession.History {
		mu.Lock()
		defer mu.Unlock()
		if cons == nil {
			return nil
		}
		return cons.History
	}}, n.Log)...)
	return func(sctx context.Context) error {
		err := api.Close(sctx)
		mu.Lock()
		defer mu.Unlock()
		if cons != nil {
			err = errors.Join(err, cons.Close())
		}
		return err
	}, nil
}

// startDaemonConsumer starts the daemon's consumer on its chain source and
// p2p node; ctx bounds the consumer's life, rctx the start.
func startDaemonConsumer(ctx, rctx context.Context, n *daemonNode, f consumerFlags) (*node.Consumer, error) {
	cl, hermes, err := n.Chain.Chain(rctx)
	if err != nil {
		return nil, tequilapi.NewError(http.StatusServiceUnavailable, tequilapi.CodeChainUnavailable, err.Error())
	}
	if n.P2P == nil || n.Discovery == nil {
		return nil, tequilapi.NewError(http.StatusServiceUnavailable, "p2p_unavailable", "the daemon's p2p node is not running")
	}
	if want := cl.ChainID().Uint64(); discFlags.p2p.chainID != want {
		return nil, tequilapi.NewError(http.StatusServiceUnavailable, tequilapi.CodeChainUnavailable,
			fmt.Sprintf("the chain has id %d but the p2p node gossips proposals of chain %d: restart the daemon with --discovery.chain-id %d", want, discFlags.p2p.chainID, want))
	}
	signer, err := unlockFrom(rctx, n.Identities, f.identity, f.passFile)
	if err != nil {
		return nil, tequilapi.NewError(http.StatusConflict, "identity_locked", err.Error())
	}
	return node.StartConsumer(ctx, node.ConsumerConfig{
		DataDir: filepath.Join(n.DataDir, "consumer"), Signer: signer, Chain: cl, Hermes: hermes,
		P2P: n.P2P, Discovery: n.Discovery, Log: n.Log,
	})
}

// unlockFrom unlocks addr (or the default identity) in ids.
func unlockFrom(ctx context.Context, ids *identity.Manager, addrFlag, passFile string) (identity.Signer, error) {
	var addr common.Address
	var err error
	if addrFlag != "" {
		addr, err = identity.ParseAddress(addrFlag)
	} else {
		addr, err = ids.Default(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("consumer identity: %w", err)
	}
	if !ids.IsUnlocked(addr) {
		if passFile == "" && os.Getenv(passphraseEnv) == "" {
			return nil, fmt.Errorf("identity %s is locked: unlock it (POST /identities/{id}/unlock) or give --consumer.passphrase-file", addr.Hex())
		}
		pw, err := readPassphrase(nil, passFile, "", false)
		if err != nil {
			return nil, err
		}
		if err := ids.Unlock(addr, pw); err != nil {
			return nil, fmt.Errorf("unlock %s: %w", addr.Hex(), err)
		}
	}
	return ids.Signer(addr)
}

func newConnectCmd() *cobra.Command {
	var req tequilapi.ConnectRequest
	var tun tunFlags
	cmd := &cobra.Command{
		Use:   "connect [PROVIDER_ID]",
		Short: "Connect through the running daemon (PUT /connection) and open a local SOCKS5 proxy, or with --tun route the whole host through a kernel tunnel",
		Example: `  myst connect --country DE --max-price-gib 0.2
  myst connect 0xd6F8612193c308Cf6FfEd67911C907213e345BC0 --proxy 127.0.0.1:1080
  sudo myst connect --tun --country DE --p2p.bootstrap /ip4/.../tcp/4001/p2p/...   # kernel tunnel, kill switch, foreground`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				req.ProviderID = args[0]
			}
			if err := req.Validate(); err != nil {
				return err
			}
			if tun.on {
				return runConnectTun(cmd, req, &tun)
			}
			c, err := theApp.daemonClient(cmd.Context())
			if err != nil {
				return fmt.Errorf("%w: start `myst daemon` first", err)
			}
			var st tequilapi.ConnectionStatus
			if err := c.Do(cmd.Context(), http.MethodPut, "/connection", req, &st); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "connected to %s (%s); SOCKS5 proxy on %s\n", st.Provider, st.Country, st.SOCKS)
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

func newDisconnectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "disconnect",
		Short: "Disconnect the daemon's connection (DELETE /connection)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := theApp.daemonClient(cmd.Context())
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

func newStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the daemon's connection: provider, duration, bytes, spent, rate (GET /connection)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := theApp.daemonClient(cmd.Context())
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
		v, err := chain.ParseMYST("0")
		if err != nil {
			return s
		}
		if _, ok := v.SetString(s, 10); !ok {
			return s
		}
		return chain.FormatMYST(v) + " MYST"
	}
	fmt.Fprintf(tw, "state\t%s\nprovider\t%s (%s)\nsocks5\t%s\nduration\t%s\nbytes\t%d down, %d up\nspent\t%s\nrate\t%s per hour\n",
		state, st.Provider, st.Country, st.SOCKS, (time.Duration(st.DurationSeconds * float64(time.Second))).Round(time.Second),
		st.RxBytes, st.TxBytes, wei(st.Spent), wei(st.RatePerHour))
	return tw.Flush()
}
