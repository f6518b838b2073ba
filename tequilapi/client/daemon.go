package client

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/openmyst/openmyst/tequilapi"
)

// ErrNoDaemon means no daemon answers at the address with the password.
var ErrNoDaemon = errors.New("no running daemon for this data dir")

// Daemon returns a logged-in client of the local daemon at baseURL whose
// password is in passwordFile (the daemon's <data-dir>/tequilapi.password):
// the file exists, the address answers /healthcheck within 2 s and the
// password logs in. Otherwise ErrNoDaemon. Requests time out after 2
// minutes.
func Daemon(ctx context.Context, baseURL, passwordFile string, log *slog.Logger) (*Client, error) {
	pw, err := tequilapi.ReadPassword(passwordFile)
	if err != nil {
		return nil, ErrNoDaemon
	}
	c, err := New(baseURL, &http.Client{Timeout: 2 * time.Minute})
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.Healthcheck(hctx); err != nil {
		return nil, ErrNoDaemon
	}
	if _, err := c.Login(hctx, pw); err != nil {
		if log != nil {
			log.Debug("daemon answers but login with the password file failed", "err", err)
		}
		return nil, ErrNoDaemon
	}
	return c, nil
}
