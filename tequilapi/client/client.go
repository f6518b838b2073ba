package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/tequilapi"
)

// maxResponseBytes bounds how much of a response the client reads.
const maxResponseBytes = 8 << 20

// Error is a failure reported by the server in its JSON error shape.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the server's error code, e.g. "not_found".
	Code string
	// Message is the server's reason.
	Message string
	// Fields are per-field problems.
	Fields map[string]string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("tequilapi: %d %s: %s", e.Status, e.Code, e.Message)
}

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Client talks to one Tequilapi server. It is safe for concurrent use.
type Client struct {
	base string
	http *http.Client

	mu    sync.Mutex
	token string
}

// New returns a client for baseURL (e.g. "http://127.0.0.1:4050"). hc may
// be nil for a client with a 30s timeout.
func New(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tequilapi client: bad base URL %q", baseURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: hc}, nil
}

// SetToken sets the bearer token sent with every request.
func (c *Client) SetToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = token
}

// Do sends a request with an optional JSON body and decodes a JSON answer
// into out (if non-nil). Other packages' typed calls build on it.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("tequilapi client: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("tequilapi client: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	c.mu.Lock()
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	c.mu.Unlock()
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("tequilapi client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("tequilapi client: %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var er tequilapi.ErrorResponse
		if err := json.Unmarshal(data, &er); err != nil || er.Error.Code == "" {
			return &Error{Status: resp.StatusCode, Code: "http_" + fmt.Sprint(resp.StatusCode), Message: strings.TrimSpace(string(data))}
		}
		return &Error{Status: resp.StatusCode, Code: er.Error.Code, Message: er.Error.Message, Fields: er.Error.Fields}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("tequilapi client: %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// Proposals calls GET /proposals: the proposals the daemon has seen that
// match f, in f's order, with their quality scores.
func (c *Client) Proposals(ctx context.Context, f market.Filter) ([]tequilapi.ListedProposal, error) {
	var out []tequilapi.ListedProposal
	return out, c.Do(ctx, http.MethodGet, "/proposals?"+f.Values().Encode(), nil, &out)
}

// Quality calls GET /quality/{id}: provider's quality score and
// blacklist state as the daemon sees them.
func (c *Client) Quality(ctx context.Context, provider common.Address) (tequilapi.QualityDTO, error) {
	var out tequilapi.QualityDTO
	return out, c.Do(ctx, http.MethodGet, "/quality/"+provider.Hex(), nil, &out)
}

// Healthcheck calls GET /healthcheck (no token needed).
func (c *Client) Healthcheck(ctx context.Context) (tequilapi.HealthcheckResponse, error) {
	return call[tequilapi.HealthcheckResponse](ctx, c, http.MethodGet, "/healthcheck", nil)
}

// Login obtains a token for password and uses it for later calls.
func (c *Client) Login(ctx context.Context, password string) (tequilapi.LoginResponse, error) {
	var out tequilapi.LoginResponse
	err := c.Do(ctx, http.MethodPost, "/auth/login", tequilapi.LoginRequest{Username: tequilapi.Username, Password: password}, &out)
	if err == nil {
		c.SetToken(out.Token)
	}
	return out, err
}

// ChangePassword changes the password; the server revokes all tokens.
func (c *Client) ChangePassword(ctx context.Context, current, next string) error {
	return c.Do(ctx, http.MethodPut, "/auth/password", tequilapi.ChangePasswordRequest{CurrentPassword: current, NewPassword: next}, nil)
}

// Identities lists the node's identities.
func (c *Client) Identities(ctx context.Context) ([]tequilapi.IdentityDTO, error) {
	var out tequilapi.IdentityListResponse
	err := c.Do(ctx, http.MethodGet, "/identities", nil, &out)
	return out.Identities, err
}

// CreateIdentity creates an identity encrypted with passphrase.
func (c *Client) CreateIdentity(ctx context.Context, passphrase string, setDefault bool) (tequilapi.IdentityDTO, error) {
	return call[tequilapi.IdentityDTO](ctx, c, http.MethodPost, "/identities", tequilapi.CreateIdentityRequest{Passphrase: passphrase, SetDefault: setDefault})
}

// Identity returns one identity.
func (c *Client) Identity(ctx context.Context, id common.Address) (tequilapi.IdentityDTO, error) {
	return call[tequilapi.IdentityDTO](ctx, c, http.MethodGet, "/identities/"+id.Hex(), nil)
}

// SetDefault makes id the node's default identity.
func (c *Client) SetDefault(ctx context.Context, id common.Address) (tequilapi.IdentityDTO, error) {
	return call[tequilapi.IdentityDTO](ctx, c, http.MethodPut, "/identities/"+id.Hex()+"/default", nil)
}

// Unlock unlocks an identity in the daemon.
func (c *Client) Unlock(ctx context.Context, id common.Address, passphrase string) (tequilapi.IdentityDTO, error) {
	return call[tequilapi.IdentityDTO](ctx, c, http.MethodPut, "/identities/"+id.Hex()+"/unlock", tequilapi.UnlockRequest{Passphrase: passphrase})
}

// Sign signs message with an unlocked identity and returns the 65-byte
// signature.
func (c *Client) Sign(ctx context.Context, id common.Address, message string) ([]byte, error) {
	var out tequilapi.SignResponse
	if err := c.Do(ctx, http.MethodPost, "/identities/"+id.Hex()+"/sign", tequilapi.SignRequest{Message: message}, &out); err != nil {
		return nil, err
	}
	sig, err := hexutil.Decode(out.Signature)
	if err != nil {
		return nil, fmt.Errorf("tequilapi client: bad signature %q from server: %w", out.Signature, err)
	}
	return sig, nil
}

// ServiceCaps calls GET /service/caps: the served provider's caps and
// this month's traffic quota use.
func (c *Client) ServiceCaps(ctx context.Context) (tequilapi.ServiceCapsDTO, error) {
	return call[tequilapi.ServiceCapsDTO](ctx, c, http.MethodGet, "/service/caps", nil)
}

// StartService calls PUT /service: start a provider in a daemon that
// serves none; it returns the provider's caps once it runs.
func (c *Client) StartService(ctx context.Context, req tequilapi.ServiceStartRequest) (tequilapi.ServiceCapsDTO, error) {
	return call[tequilapi.ServiceCapsDTO](ctx, c, http.MethodPut, "/service", req)
}

// ServiceOptions calls GET /service/options: the provider's remembered
// state and the options a start would use.
func (c *Client) ServiceOptions(ctx context.Context) (tequilapi.ServiceOptionsDTO, error) {
	return call[tequilapi.ServiceOptionsDTO](ctx, c, http.MethodGet, "/service/options", nil)
}

// Capabilities calls GET /capabilities: whether the daemon can run tun
// connections and the kernel exit mode.
func (c *Client) Capabilities(ctx context.Context) (tequilapi.CapabilitiesDTO, error) {
	return call[tequilapi.CapabilitiesDTO](ctx, c, http.MethodGet, "/capabilities", nil)
}

// StopService stops the daemon's provider (DELETE /service).
func (c *Client) StopService(ctx context.Context) error {
	return c.Do(ctx, http.MethodDelete, "/service", nil, nil)
}

// call is Do for a route that answers a T.
func call[T any](ctx context.Context, c *Client, method, path string, body any) (T, error) {
	var out T
	err := c.Do(ctx, method, path, body, &out)
	return out, err
}
