package client

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/openmyst/openmyst/hermes/api"
)

// ErrInsecureURL is returned by New for a plain http:// hermes URL to a
// host that is not loopback, unless Options.AllowInsecureHTTP is set.
var ErrInsecureURL = errors.New("hermes client: plain http to a non-loopback hermes")

// checkBaseURL validates a hermes base URL and returns it without a
// trailing slash: https:// always, http:// to a loopback host (devnets),
// http:// elsewhere only when allowInsecure. Plain HTTP is logged.
func checkBaseURL(raw string, allowInsecure bool, log *slog.Logger) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("hermes client: hermes URL %q: %w", raw, err)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("hermes client: hermes URL %q: want scheme://host[:port][/path]", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if api.Loopback(u.Hostname()) {
			log.Info("hermes client: plain HTTP to a loopback hermes (devnet only; use https:// on a real network)", "url", u.Redacted())
			break
		}
		if !allowInsecure {
			return "", fmt.Errorf("%w: %s (use https://, or allow insecure http explicitly)", ErrInsecureURL, u.Redacted())
		}
		log.Warn("hermes client: INSECURE plain HTTP to a non-loopback hermes: promises and secrets travel unencrypted", "url", u.Redacted())
	default:
		return "", fmt.Errorf("hermes client: hermes URL %q: scheme must be https (or http to loopback)", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// errRedirect refuses a redirect: the API has none, and following one
// could leave the checked scheme and host (https to plain http).
var errRedirect = errors.New("hermes client: the hermes answered with a redirect, which is not followed")

func noRedirects(*http.Request, []*http.Request) error { return errRedirect }
