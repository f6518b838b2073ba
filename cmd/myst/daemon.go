package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/buildinfo"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

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
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	log.Info("node started", "data_dir", a.dataDir, "tequilapi", "http://"+ln.Addr().String(), "version", buildinfo.String())
	err = srv.Serve(ctx, ln)
	log.Info("node stopping")
	return err
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
