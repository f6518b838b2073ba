package chain

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/internal/retry"
)

// MaxRPCEndpoints bounds the RPC URLs one chain client fails over between.
const MaxRPCEndpoints = 16

// Defaults of RPCConfig.
const (
	// DefaultRPCAttemptTimeout bounds one JSON-RPC request to one endpoint
	// before it counts as hung and the next endpoint is tried.
	DefaultRPCAttemptTimeout = 15 * time.Second
	// maxRPCResponse bounds a response body read into memory.
	maxRPCResponse = 64 << 20
)

// DefaultRPCBackoff is how long a failed endpoint is left alone: 1 s after
// its first failure in a row, doubling up to 1 min, with jitter.
var DefaultRPCBackoff = retry.Backoff{Initial: time.Second, Max: time.Minute, Jitter: true}

// ErrWrongChain is returned (wrapped) for an RPC endpoint that serves
// another chain than the one asked for.
var ErrWrongChain = errors.New("chain: RPC endpoint is on the wrong chain")

// ErrNoRPCEndpoint is returned (wrapped) when no endpoint could answer a
// request.
var ErrNoRPCEndpoint = errors.New("chain: no RPC endpoint answers")

// RPCConfig configures DialRPC.
type RPCConfig struct {
	// URLs are the chain's JSON-RPC endpoints, tried in order. One URL
	// may be anything go-ethereum dials (http, https, ws, wss, an IPC
	// path); several must all be http(s).
	URLs []string
	// ChainID is the chain every endpoint must serve; 0 takes the chain
	// id of the first endpoint that answers.
	ChainID uint64
	// AttemptTimeout bounds one request to one endpoint
	// (DefaultRPCAttemptTimeout if zero).
	AttemptTimeout time.Duration
	// Backoff says how long a failed endpoint is skipped
	// (DefaultRPCBackoff if Initial is zero).
	Backoff retry.Backoff
	// Log receives failovers (default slog.Default()).
	Log *slog.Logger
}

// ValidateRPCURLs checks a list of RPC URLs: 1 to MaxRPCEndpoints, no
// duplicates; a single URL only needs to be non-empty (go-ethereum dials
// ws and IPC too), several must be absolute http(s) URLs because failover
// resends requests over HTTP.
func ValidateRPCURLs(urls []string) error {
	if len(urls) == 0 {
		return errors.New("chain: no RPC URL")
	}
	if len(urls) > MaxRPCEndpoints {
		return fmt.Errorf("chain: %d RPC URLs, at most %d", len(urls), MaxRPCEndpoints)
	}
	if len(urls) == 1 {
		if strings.TrimSpace(urls[0]) == "" {
			return errors.New("chain: empty RPC URL")
		}
		return nil
	}
	seen := make(map[string]bool, len(urls))
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("chain: RPC URL: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("chain: RPC URL %q: with several endpoints each must be an http(s) URL (failover resends requests over HTTP)", RedactURL(raw))
		}
		if seen[u.String()] {
			return fmt.Errorf("chain: RPC URL %q listed twice", RedactURL(raw))
		}
		seen[u.String()] = true
	}
	return nil
}

// SplitRPCURLs splits a comma-separated list of RPC URLs (the form of the
// --chain.rpc flag), dropping blanks around each.
func SplitRPCURLs(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// RedactURL is raw without user info, query or path (they may carry an
// API key), for errors and logs.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}

// DialRPC connects to a chain through cfg.URLs. With one URL it is
// ethclient.DialContext plus the chain id check. With several, requests go
// to one endpoint at a time; on a transport error, a timeout
// (AttemptTimeout), a 5xx, a 429 or EIP-1474's "limit exceeded" (-32005)
// the same request is sent to the next
// endpoint that is not backing off, and the failed one is skipped for
// Backoff.Delay(failures in a row). Every endpoint's chain id is checked
// before it serves a request: one on another chain is refused for good
// (ErrWrongChain; DialRPC fails when an endpoint answering at dial time is
// on the wrong chain). Resending a request is safe for what the chain
// package sends: reads, and eth_sendRawTransaction, whose signed bytes are
// the same transaction on every endpoint (a node that has it answers
// "already known"); nonces are the Transactor's and never change on a
// failover.
func DialRPC(ctx context.Context, cfg RPCConfig) (*ethclient.Client, error) {
	if err := ValidateRPCURLs(cfg.URLs); err != nil {
		return nil, err
	}
	if len(cfg.URLs) == 1 {
		c, err := ethclient.DialContext(ctx, cfg.URLs[0])
		if err != nil {
			return nil, fmt.Errorf("chain: dial %s: %w", RedactURL(cfg.URLs[0]), err)
		}
		if cfg.ChainID != 0 {
			id, err := c.ChainID(ctx)
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("chain: %s: read chain id: %w", RedactURL(cfg.URLs[0]), err)
			}
			if !id.IsUint64() || id.Uint64() != cfg.ChainID {
				c.Close()
				return nil, fmt.Errorf("%w: %s is chain %s, want %d", ErrWrongChain, RedactURL(cfg.URLs[0]), id, cfg.ChainID)
			}
		}
		return c, nil
	}
	ft := newFailover(cfg)
	if err := ft.checkAll(ctx); err != nil {
		return nil, err
	}
	// The transport picks the endpoint; the client's own URL only shows
	// in its errors, so it carries no path or query (API keys).
	rc, err := rpc.DialOptions(ctx, RedactURL(cfg.URLs[0]), rpc.WithHTTPClient(&http.Client{Transport: ft}))
	if err != nil {
		return nil, fmt.Errorf("chain: dial %s: %w", RedactURL(cfg.URLs[0]), err)
	}
	return ethclient.NewClient(rc), nil
}

// endpoint is one RPC URL and its health.
type endpoint struct {
	u    *url.URL
	name string // redacted, for logs and errors

	// guarded by failover.mu
	failures  int       // in a row
	downUntil time.Time // skipped until then
	checked   bool      // chain id verified
	refused   error     // wrong chain: never used
}

// failover is an http.RoundTripper sending each JSON-RPC request to the
// current endpoint and, when it fails, to the next healthy one.
type failover struct {
	eps     []*endpoint
	base    http.RoundTripper
	timeout time.Duration
	backoff retry.Backoff
	log     *slog.Logger

	mu      sync.Mutex
	chainID uint64 // 0 until known
	cur     int
}

func newFailover(cfg RPCConfig) *failover {
	f := &failover{base: http.DefaultTransport, timeout: cfg.AttemptTimeout, backoff: cfg.Backoff, log: cfg.Log, chainID: cfg.ChainID}
	f.timeout = defaults.Positive(f.timeout, DefaultRPCAttemptTimeout)
	if f.backoff.Initial <= 0 {
		f.backoff = DefaultRPCBackoff
	}
	f.log = cmp.Or(f.log, slog.Default())
	for _, raw := range cfg.URLs {
		u, _ := url.Parse(raw) // validated
		f.eps = append(f.eps, &endpoint{u: u, name: RedactURL(raw)})
	}
	return f
}

// checkAll reads every endpoint's chain id: one on the wrong chain fails
// the dial; one that does not answer is checked when it is first used. At
// least one must answer.
func (f *failover) checkAll(ctx context.Context) error {
	var errs []error
	ok := 0
	for _, ep := range f.eps {
		err := f.check(ctx, ep)
		if errors.Is(err, ErrWrongChain) {
			return err
		}
		if err != nil {
			f.log.Warn("chain: RPC endpoint does not answer; it is checked again before it is used", "rpc", ep.name, "err", err)
			f.failed(ep, err) // the first requests go elsewhere
			errs = append(errs, err)
			continue
		}
		ok++
	}
	if ok == 0 {
		return fmt.Errorf("%w: %w", ErrNoRPCEndpoint, errors.Join(errs...))
	}
	return nil
}

// check reads ep's chain id (once) and refuses ep for good when it is not
// the chain's.
func (f *failover) check(ctx context.Context, ep *endpoint) error {
	f.mu.Lock()
	checked, refused := ep.checked, ep.refused
	f.mu.Unlock()
	if refused != nil {
		return refused
	}
	if checked {
		return nil
	}
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`)
	status, data, err := f.post(ctx, ep, body, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("chain: %s: eth_chainId: HTTP %d", ep.name, status)
	}
	id, err := parseChainID(data)
	if err != nil {
		return fmt.Errorf("chain: %s: eth_chainId: %w", ep.name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.chainID == 0 && id.IsUint64() {
		f.chainID = id.Uint64()
	}
	if !id.IsUint64() || id.Uint64() != f.chainID {
		ep.refused = fmt.Errorf("%w: %s is chain %s, want %d (fix the network file or --chain.rpc)", ErrWrongChain, ep.name, id, f.chainID)
		f.log.Error("chain: refusing RPC endpoint", "rpc", ep.name, "chainId", id, "want", f.chainID)
		return ep.refused
	}
	ep.checked = true
	return nil
}

// parseChainID decodes an eth_chainId answer.
func parseChainID(data []byte) (*big.Int, error) {
	var resp struct {
		Result *hexutil.Big `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("bad answer: %w", err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("error %d: %.200q", resp.Error.Code, resp.Error.Message)
	}
	if resp.Result == nil {
		return nil, errors.New("no result")
	}
	if resp.Result.ToInt().Sign() <= 0 {
		return nil, errors.New("chain id 0")
	}
	return (*big.Int)(resp.Result), nil
}

// post sends body to ep within the attempt timeout and reads the whole
// answer, so that a hang at any point counts against ep.
func (f *failover) post(ctx context.Context, ep *endpoint, body []byte, hdr http.Header) (int, []byte, error) {
	actx, cancel := context.WithTimeout(ctx, f.attemptTimeout(ctx, ep))
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, ep.u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("chain: %s: %w", ep.name, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.base.RoundTrip(req)
	if err != nil {
		return 0, nil, fmt.Errorf("chain: %s: %w", ep.name, scrub(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRPCResponse+1))
	if err != nil {
		return 0, nil, fmt.Errorf("chain: %s: read answer: %w", ep.name, scrub(err))
	}
	if len(data) > maxRPCResponse {
		return 0, nil, fmt.Errorf("chain: %s: answer larger than %d bytes", ep.name, maxRPCResponse)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			f.mu.Lock()
			ep.downUntil = time.Now().Add(min(time.Duration(s)*time.Second, f.backoff.Max))
			f.mu.Unlock()
		}
	}
	return resp.StatusCode, data, nil
}

// attemptTimeout is AttemptTimeout for a request to ep, but at most half
// of what is left of ctx's deadline when another endpoint could take over
// (not refused, not backing off): a caller with a short deadline still
// gets an answer from the next endpoint when ep hangs, and the last
// candidate gets all the time there is.
func (f *failover) attemptTimeout(ctx context.Context, ep *endpoint) time.Duration {
	d := f.timeout
	dl, ok := ctx.Deadline()
	if !ok {
		return d
	}
	now := time.Now()
	f.mu.Lock()
	others := 0
	for _, o := range f.eps {
		if o != ep && o.refused == nil && !now.Before(o.downUntil) {
			others++
		}
	}
	f.mu.Unlock()
	if others > 0 {
		d = min(d, dl.Sub(now)/2)
	}
	return d
}

// scrub hides the full URL (it may carry an API key) in err.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// codeLimitExceeded is EIP-1474's JSON-RPC error "Limit exceeded", which
// public RPCs send (in a 200 answer) when a client is over its quota.
const codeLimitExceeded = -32005

// limitExceeded reports whether a JSON-RPC answer (one object or a batch)
// carries codeLimitExceeded: the request was not served, another
// endpoint may serve it.
func limitExceeded(data []byte) bool {
	if !bytes.Contains(data, []byte("-32005")) {
		return false
	}
	type answer struct {
		Error *struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	var batch []answer
	if err := json.Unmarshal(data, &batch); err != nil {
		var one answer
		if json.Unmarshal(data, &one) != nil {
			return false
		}
		batch = []answer{one}
	}
	for _, a := range batch {
		if a.Error != nil && a.Error.Code == codeLimitExceeded {
			return true
		}
	}
	return false
}

// retryable reports whether an HTTP status means "try another endpoint".
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// RoundTrip implements http.RoundTripper: the request goes to the current
// endpoint, then to the others in turn while they fail; when all are
// backing off it waits for the first to come back, up to two rounds.
func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("chain: read request: %w", err)
		}
	}
	var errs []error
	for attempt := 0; attempt < 2*len(f.eps); attempt++ {
		ep, wait, err := f.pick()
		if err != nil {
			errs = append(errs, err)
			break
		}
		if wait > 0 {
			if err := retry.Sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("%w: %w (%w)", ErrNoRPCEndpoint, err, errors.Join(errs...))
			}
		}
		if err := f.check(ctx, ep); err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			if !errors.Is(err, ErrWrongChain) {
				f.failed(ep, err)
			}
			errs = append(errs, err)
			continue
		}
		status, data, err := f.post(ctx, ep, body, req.Header)
		if ctx.Err() != nil {
			if err == nil {
				err = ctx.Err()
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// No answer in all the time there was: the next
				// request tries another endpoint. (A cancelled
				// caller is not the endpoint's fault.)
				f.failed(ep, err)
			}
			return nil, err
		}
		if err == nil && retryable(status) {
			err = fmt.Errorf("chain: %s: HTTP %d", ep.name, status)
		}
		if err == nil && status == http.StatusOK && limitExceeded(data) {
			err = fmt.Errorf("chain: %s: JSON-RPC error %d (limit exceeded)", ep.name, codeLimitExceeded)
		}
		if err != nil {
			f.failed(ep, err)
			errs = append(errs, err)
			continue
		}
		f.succeeded(ep)
		return &http.Response{
			Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"Content-Type": []string{"application/json"}},
			Body:          io.NopCloser(bytes.NewReader(data)),
			ContentLength: int64(len(data)), Request: req,
		}, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrNoRPCEndpoint, errors.Join(errs...))
}

// pick returns the endpoint to try: the current one unless it is backing
// off, else the next one that is not, else the one back first (and how
// long to wait for it). Refused endpoints are never picked.
func (f *failover) pick() (*endpoint, time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	var soonest *endpoint
	si := 0
	for i := range f.eps {
		j := (f.cur + i) % len(f.eps)
		ep := f.eps[j]
		if ep.refused != nil {
			continue
		}
		if !now.Before(ep.downUntil) {
			if j != f.cur {
				f.log.Warn("chain: RPC failover", "from", f.eps[f.cur].name, "to", ep.name)
				f.cur = j
			}
			return ep, 0, nil
		}
		if soonest == nil || ep.downUntil.Before(soonest.downUntil) {
			soonest, si = ep, j
		}
	}
	if soonest == nil {
		var errs []error
		for _, ep := range f.eps {
			errs = append(errs, ep.refused)
		}
		return nil, 0, errors.Join(errs...)
	}
	f.cur = si
	return soonest, soonest.downUntil.Sub(now), nil
}

func (f *failover) failed(ep *endpoint, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ep.failures++
	until := time.Now().Add(f.backoff.Delay(ep.failures))
	if until.After(ep.downUntil) {
		ep.downUntil = until
	}
	f.log.Warn("chain: RPC endpoint failed", "rpc", ep.name, "failures", ep.failures, "retry_in", time.Until(ep.downUntil).Round(time.Millisecond), "err", err)
}

func (f *failover) succeeded(ep *endpoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ep.failures, ep.downUntil = 0, time.Time{}
}
