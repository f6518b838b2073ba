package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/buildinfo"
	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// daemonNode is what a daemon extension gets: the node's open parts.
type daemonNode struct {
	// DataDir is the node's data dir.
	DataDir string
	// Log is the node logger.
	Log *slog.Logger
	// DB is the node store.
	DB *storage.DB
	// Identities is the keystore.
	Identities *identity.Manager
	// API is the Tequilapi server; add routes with API.Add before the
	// extension's start returns.
	API *tequilapi.Server
	// Chain is the node's one chain source (--chain.rpc,
	// --chain.deployment), connected on first use; every extension that
	// needs the chain uses it.
	Chain *node.ChainConn
	// P2P and Discovery are the node's one libp2p host and discovery
	// service, set by the discovery extension when it starts; extensions
	// that need the p2p network (the consumer, a provider) read them when
	// they start their work, and never start a host of their own.
	P2P       *p2p.Node
	Discovery *discovery.Service
}

// daemonExtension plugs a capability into `myst daemon`. Register one from
// an init function in your own cmd/myst/<name>.go:
//
//	func init() {
//		registerDaemonExtension(daemonExtension{Name: "proposals", Flags: ..., Start: ...})
//	}
type daemonExtension struct {
	// Name identifies the extension in logs and errors.
	Name string
	// Base marks an extension others build on (the p2p node): base
	// extensions start before the others and stop after them, whatever
	// the registration order.
	Base bool
	// Flags declares the extension's daemon flags (optional); they are
	// resolved from env and config.toml like every flag.
	Flags func(fs *pflag.FlagSet)
	// Start starts the extension. It must not block; work runs in
	// goroutines tied to ctx (canceled at shutdown). stop (optional) is
	// called at shutdown in reverse start order.
	Start func(ctx context.Context, n *daemonNode) (stop func(context.Context) error, err error)
}

var daemonExtensions []daemonExtension

// registerDaemonExtension adds e to every `myst daemon` built afterwards.
func registerDaemonExtension(e daemonExtension) {
	daemonExtensions = append(daemonExtensions, e)
}

func newDaemonCmd() *cobra.Command {
	var allowRemote bool
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the node: storage, identities and the Tequilapi REST API",
		Long: `Run the node until SIGINT or SIGTERM.

On first start a random Tequilapi password is generated, stored in
<data-dir>/tequilapi.password (mode 0600) and printed once. Log in with
  curl -s -X POST http://127.0.0.1:4050/auth/login -d '{"username":"myst","password":"<password>"}'
and send the token as "Authorization: Bearer <token>".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd.Context(), cmd, allowRemote)
		},
	}
	cmd.Flags().BoolVar(&allowRemote, "tequilapi.allow-remote", false, "allow Tequilapi to listen on a non-loopback address")
	daemonChain.register(cmd.Flags())
	for _, e := range daemonExtensions {
		if e.Flags != nil {
			e.Flags(cmd.Flags())
		}
	}
	return cmd
}

func runDaemon(ctx context.Context, cmd *cobra.Command, allowRemote bool) error {
	a := theApp
	log := a.log
	if err := a.ensureDataDir(); err != nil {
		return err
	}
	db, err := storage.Open(filepath.Join(a.dataDir, storage.FileName))
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("close storage", "err", err)
		}
	}()
	ids, err := a.identityManager(db)
	if err != nil {
		return err
	}
	defer ids.LockAll()

	pw, created, err := tequilapi.EnsurePassword(a.passwordFile())
	if err != nil {
		return err
	}
	if created {
		// Shown once, on the terminal only, never logged.
		fmt.Fprintf(cmd.ErrOrStderr(), "Tequilapi password for user %q (shown once, stored in %s): %s\n", tequilapi.Username, a.passwordFile(), pw)
	}
	srv, err := tequilapi.New(tequilapi.Config{
		Address:      a.tequilapiAddress,
		Port:         a.tequilapiPort,
		AllowRemote:  allowRemote,
		PasswordFile: a.passwordFile(),
		Version:      buildinfo.String(),
		Log:          log,
	})
	if err != nil {
		return err
	}
	srv.Add(tequilapi.IdentityRoutes(ids, log)...)

	cc, err := daemonChain.conn(a, log)
	if err != nil {
		return err
	}
	defer cc.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	node := &daemonNode{DataDir: a.dataDir, Log: log, DB: db, Identities: ids, API: srv, Chain: cc}
	var stops []func(context.Context) error
	var stopNames []string
	defer func() {
		// Stop extensions in reverse order, with a bounded grace period.
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer scancel()
		for i := len(stops) - 1; i >= 0; i-- {
			if err := stops[i](sctx); err != nil {
				log.Error("stop "+stopNames[i], "err", err)
			}
		}
	}()
	for _, e := range startOrder(daemonExtensions) {
		stop, err := e.Start(ctx, node)
		if err != nil {
			return fmt.Errorf("start %s: %w", e.Name, err)
		}
		if stop != nil {
			stops = append(stops, stop)
			stopNames = append(stopNames, e.Name)
		}
		log.Debug("daemon extension started", "name", e.Name)
	}

	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	log.Info("node started", "data_dir", a.dataDir, "tequilapi", "http://"+ln.Addr().String(), "version", buildinfo.String())
	err = srv.Serve(ctx, ln)
	log.Info("node stopping")
	return err
}

// startOrder is the extensions, base ones first, otherwise in
// registration order.
func startOrder(es []daemonExtension) []daemonExtension {
	out := make([]daemonExtension, 0, len(es))
	for _, base := range []bool{true, false} {
		for _, e := range es {
			if e.Base == base {
				out = append(out, e)
			}
		}
	}
	return out
}

// identityManager opens the keystore; db may be nil (default identity then
// not remembered).
func (a *app) identityManager(db *storage.DB) (*identity.Manager, error) {
	var opts []identity.Option
	if db != nil {
		opts = append(opts, identity.WithSettings(db))
	}
	if a.lightScrypt {
		opts = append(opts, identity.WithLightScrypt())
	}
	return identity.NewManager(a.keystoreDir(), opts...)
}

// tequilapiURL is the base URL of the configured Tequilapi.
func (a *app) tequilapiURL() string {
	return "http://" + net.JoinHostPort(a.tequilapiAddress, strconv.Itoa(a.tequilapiPort))
}

// errNoDaemon means no daemon answers for this data dir.
var errNoDaemon = errors.New("no running daemon for this data dir")

// daemonClient returns a logged-in Tequilapi client when a daemon for this
// data dir is running: its password file exists, the configured address
// answers /healthcheck and the password logs in. Otherwise errNoDaemon.
func (a *app) daemonClient(ctx context.Context) (*client.Client, error) {
	pw, err := tequilapi.ReadPassword(a.passwordFile())
	if err != nil {
		return nil, errNoDaemon
	}
	c, err := client.New(a.tequilapiURL(), &http.Client{Timeout: 2 * time.Minute})
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.Healthcheck(hctx); err != nil {
		return nil, errNoDaemon
	}
	if _, err := c.Login(hctx, pw); err != nil {
		a.log.Debug("daemon answers but login with the password file failed", "err", err)
		return nil, errNoDaemon
	}
	return c, nil
}
