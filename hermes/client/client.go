package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/hermes/api"
	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/internal/retry"
	"github.com/openmyst/openmyst/payments"
)

// APIError is a rejection by the hermes: a stable code and its reason.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Code is the hermes's stable rejection code.
	Code api.Code
	// Message is the hermes's reason.
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("hermes: %d %s: %s", e.Status, e.Code, e.Message)
}

// ErrUnavailable is wrapped by every error that did not get an answer from
// the hermes (network errors, timeouts, 5xx, retryable rejections, the
// caller's deadline reached between retries): the same request may succeed
// later. Rejections (*APIError with a non-retryable code) never wrap it.
var ErrUnavailable = errors.New("hermes unavailable")

// Retryable reports whether err (from a Client method) may go away if the
// same request is sent again later.
func Retryable(err error) bool { return errors.Is(err, ErrUnavailable) }

// DefaultAttemptTimeout bounds one HTTP attempt when
// Options.AttemptTimeout is zero.
const DefaultAttemptTimeout = 5 * time.Second

// Options tune a Client; zero values pick the defaults.
type Options struct {
	// HTTPClient sends the requests (default: a client without its own
	// timeout, AttemptTimeout bounds each attempt, that follows no
	// redirects, so a URL's scheme and host are the ones checked).
	HTTPClient *http.Client
	// AttemptTimeout bounds each HTTP attempt, so a hung hermes cannot
	// stall the caller (the provider's invoice loop) for longer than this
	// per try (default DefaultAttemptTimeout). The caller's ctx bounds the
	// whole call, retries and backoff included: no backoff sleep is started
	// that would end after ctx's deadline.
	AttemptTimeout time.Duration
	// Attempts is how many times a retryable request is tried (default 6).
	Attempts int
	// BaseDelay is the first backoff (default 200ms), doubled per attempt
	// up to MaxDelay (default 5s), with jitter.
	BaseDelay, MaxDelay time.Duration
	// Log receives retries and recoveries (default slog.Default()).
	Log *slog.Logger
	// Chain reads the hermes's operator and fee from the chain; every
	// hermes promise is checked against them before R is revealed. Without
	// it RequestPromise refuses every promise (a client that only reads,
	// like a settler, may leave it nil).
	Chain Chain
	// HermesID is the Hermes contract the provider trusts; exchange
	// messages for another hermes are refused.
	HermesID common.Address
	// TermsMaxAge caps how long the on-chain terms are cached (default
	// DefaultTermsMaxAge); they are re-read sooner when a fee change could
	// take effect.
	TermsMaxAge time.Duration
	// MaxPromiseFee is the transactor fee (wei) a hermes promise may carry
	// whatever its amount (nil: none). A larger fee must be within the
	// hermes's on-chain fee rate on the promise's amount.
	MaxPromiseFee *big.Int
	// RootCAs verifies an https:// hermes's certificate (nil: the system
	// pool). Ignored when HTTPClient is set.
	RootCAs *x509.CertPool
	// AllowInsecureHTTP permits a plain http:// URL to a host that is not
	// loopback. Without it only https:// URLs and http:// to loopback (a
	// devnet) are accepted.
	AllowInsecureHTTP bool
}

// Client is a provider's client of one hermes.
type Client struct {
	base string
	st   HashlockStore
	o    Options
	tc   termsCache
	now  func() time.Time // the clock of the terms cache

	// ledMu serializes checking hermes promises against led and storing
	// them, so the ledger always matches the stored promises.
	ledMu sync.Mutex
	led   ledger
}

// New returns a client of the hermes at baseURL keeping its secrets in st.
// baseURL is https://host[:port]; plain http:// is accepted for a loopback
// host (a devnet), and for any other host only with
// Options.AllowInsecureHTTP. The choice is logged.
func New(baseURL string, st HashlockStore, o Options) (*Client, error) {
	o.Log = cmp.Or(o.Log, slog.Default())
	base, err := checkBaseURL(baseURL, o.AllowInsecureHTTP, o.Log)
	if err != nil {
		return nil, err
	}
	if o.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
		o.HTTPClient = &http.Client{Transport: tr, CheckRedirect: noRedirects}
	}
	o.AttemptTimeout = defaults.Positive(o.AttemptTimeout, DefaultAttemptTimeout)
	o.Attempts = defaults.Positive(o.Attempts, 6)
	o.BaseDelay = defaults.Positive(o.BaseDelay, 200*time.Millisecond)
	o.MaxDelay = defaults.Positive(o.MaxDelay, 5*time.Second)
	o.TermsMaxAge = defaults.Positive(o.TermsMaxAge, DefaultTermsMaxAge)
	return &Client{base: base, st: st, o: o, now: time.Now}, nil
}

// NewHashlock creates a secret R, stores it durably and returns its
// hashlock. Only after it returns may an invoice carry the hashlock.
func (c *Client) NewHashlock(ctx context.Context) ([32]byte, error) {
	r, h, err := payments.NewSecret()
	if err != nil {
		return h, err
	}
	if err := c.st.Put(ctx, Entry{Hashlock: h, R: r, Created: time.Now().UTC()}); err != nil {
		return h, fmt.Errorf("hermes client: store secret: %w", err)
	}
	return h, nil
}

// RequestPromise sends the consumer's exchange message to the hermes and
// returns the hermes promise, then reveals R. The message's hashlock must
// come from NewHashlock. The message is stored before it is sent and the
// promise before R is revealed, so Recover can finish after a crash. A
// failed reveal is not an error here (the promise is valid; Recover or a
// later call reveals it).
func (c *Client) RequestPromise(ctx context.Context, m *payments.ExchangeMessage) (*payments.Promise, error) {
	// The message is money the consumer signed away: it is stored even when
	// ctx is ending (a provider shutting down as it arrives), so Recover
	// forwards it after a restart.
	keep := context.WithoutCancel(ctx)
	e, err := c.st.Get(keep, m.Promise.Hashlock)
	if err != nil {
		return nil, fmt.Errorf("hermes client: hashlock of the message: %w", err)
	}
	raw, err := m.MarshalJSON() // not json.Marshal: no second pass over the bytes
	if err != nil {
		return nil, fmt.Errorf("hermes client: encode message: %w", err)
	}
	if !bytes.Equal(e.Message, raw) {
		e.Message, e.Promise, e.Revealed = raw, nil, false
		if err := c.st.Update(keep, e); err != nil {
			return nil, fmt.Errorf("hermes client: store message: %w", err)
		}
	}
	return c.finish(ctx, e, m)
}

// finish posts e's message (idempotent on the hermes), stores the promise
// and reveals R.
func (c *Client) finish(ctx context.Context, e Entry, m *payments.ExchangeMessage) (*payments.Promise, error) {
	var resp struct {
		Promise  json.RawMessage `json:"promise"`
		Replayed bool            `json:"replayed"`
	}
	if err := c.do(ctx, http.MethodPost, api.PathExchange, e.Message, &resp); err != nil {
		return nil, err
	}
	p, err := payments.DecodePromise(resp.Promise)
	if err != nil {
		return nil, fmt.Errorf("%w: hermes answered a malformed promise: %v", ErrUntrustedPromise, err)
	}
	if err := c.accept(ctx, &e, m, p, resp.Promise); err != nil {
		return nil, err
	}
	if err := c.reveal(ctx, e, m); err != nil {
		c.o.Log.Warn("hermes client: reveal failed; Recover will retry", "hashlock", fmt.Sprintf("%x", e.Hashlock[:8]), "err", err)
	}
	return p, nil
}

// accept checks the hermes promise p (wire form raw) answering m and
// stores it in e; nothing is stored for a promise that fails the checks.
func (c *Client) accept(ctx context.Context, e *Entry, m *payments.ExchangeMessage, p *payments.Promise, raw []byte) error {
	c.ledMu.Lock()
	defer c.ledMu.Unlock()
	if err := c.verifyPromise(ctx, m, p); err != nil {
		if errors.Is(err, ErrUntrustedPromise) {
			c.o.Log.Error("hermes client: refused a hermes promise; R stays secret", "hashlock", fmt.Sprintf("%x", e.Hashlock[:8]), "err", err)
		}
		return err
	}
	e.Promise = raw
	// A promise the hermes issued is stored even when ctx is ending.
	if err := c.st.Update(context.WithoutCancel(ctx), *e); err != nil {
		return fmt.Errorf("hermes client: store hermes promise: %w", err)
	}
	c.led.add(m, p)
	return nil
}

func (c *Client) reveal(ctx context.Context, e Entry, m *payments.ExchangeMessage) error {
	body, err := json.Marshal(api.RevealRequest{Provider: m.Provider, Hashlock: e.Hashlock, R: e.R})
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodPost, api.PathReveal, body, nil); err != nil {
		return err
	}
	e.Revealed = true
	return c.st.Update(context.WithoutCancel(ctx), e)
}

// Recover finishes every exchange interrupted by a crash: messages sent
// without a stored promise are sent again (the hermes answers with the
// same promise) and stored promises whose R was not acknowledged are
// revealed. It returns how many entries it finished.
func (c *Client) Recover(ctx context.Context) (int, error) {
	es, err := c.st.Unfinished(ctx)
	if err != nil {
		return 0, fmt.Errorf("hermes client: list unfinished: %w", err)
	}
	done := 0
	var first error
	for _, e := range es {
		m, err := payments.DecodeExchangeMessage(e.Message)
		if err != nil {
			return done, fmt.Errorf("hermes client: stored message %x: %w", e.Hashlock[:4], err)
		}
		if e.Promise == nil {
			_, err = c.finish(ctx, e, m)
			if err == nil {
				// finish logs reveal failures; check the entry really finished.
				if e2, gerr := c.st.Get(ctx, e.Hashlock); gerr == nil && !e2.Revealed {
					err = errors.New("hermes client: reveal still pending")
				}
			}
		} else {
			err = c.reveal(ctx, e, m)
		}
		if err != nil {
			c.o.Log.Warn("hermes client: recover", "hashlock", fmt.Sprintf("%x", e.Hashlock[:8]), "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		done++
	}
	return done, first
}

// Info returns the hermes's description (operator, chain, fee).
func (c *Client) Info(ctx context.Context) (api.Info, error) {
	var info api.Info
	err := c.do(ctx, http.MethodGet, api.PathInfo, nil, &info)
	return info, err
}

// Provider returns the hermes's view of a provider.
func (c *Client) Provider(ctx context.Context, provider string) (api.ProviderResponse, error) {
	var v api.ProviderResponse
	err := c.do(ctx, http.MethodGet, api.PathProviders+provider, nil, &v)
	return v, err
}

// do sends a request, retrying network errors and retryable rejections
// with exponential backoff and jitter; other rejections are *APIError.
// Each attempt is bounded by AttemptTimeout, the whole call by ctx; every
// error except a rejection wraps ErrUnavailable.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	backoff := retry.Backoff{Initial: c.o.BaseDelay, Max: c.o.MaxDelay, Jitter: true}
	var last error
	for attempt := 1; attempt <= c.o.Attempts; attempt++ {
		if ctx.Err() != nil {
			return c.giveUp(ctx, method, path, last)
		}
		actx, cancel := context.WithTimeout(ctx, c.o.AttemptTimeout)
		err := c.once(actx, method, path, body, out)
		if err != nil && actx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("attempt timed out after %s: %w", c.o.AttemptTimeout, err)
		}
		cancel()
		if err == nil {
			return nil
		}
		var ae *APIError
		if errors.As(err, &ae) && !ae.Code.Retryable() && ae.Status < 500 {
			return err
		}
		last = err
		if attempt == c.o.Attempts || ctx.Err() != nil {
			break
		}
		wait := backoff.Delay(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// The next attempt could not start before the caller's deadline.
			return c.giveUp(ctx, method, path, last)
		}
		c.o.Log.Debug("hermes client: retrying", "path", path, "attempt", attempt, "wait", wait, "err", err)
		if retry.Sleep(ctx, wait) != nil {
			return c.giveUp(ctx, method, path, last)
		}
	}
	if ctx.Err() != nil {
		return c.giveUp(ctx, method, path, last)
	}
	return fmt.Errorf("hermes client: %s %s failed after %d attempts: %w: %w", method, path, c.o.Attempts, ErrUnavailable, last)
}

// giveUp is the error of a call whose ctx ended (or whose deadline leaves
// no room for another attempt).
func (c *Client) giveUp(ctx context.Context, method, path string, last error) error {
	cause := ctx.Err()
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	if last == nil {
		return fmt.Errorf("hermes client: %s %s: %w: %w", method, path, ErrUnavailable, cause)
	}
	return fmt.Errorf("hermes client: %s %s: %w: %w (last error: %w)", method, path, ErrUnavailable, cause, last)
}

func (c *Client) once(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", api.ContentType)
	}
	res, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		var eb api.ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
			return &APIError{Status: res.StatusCode, Code: api.CodeUnavailable, Message: strings.TrimSpace(string(raw))}
		}
		return &APIError{Status: res.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("hermes client: decode %s answer: %w", path, err)
	}
	return nil
}
