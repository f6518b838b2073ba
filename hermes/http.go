package hermes

import (
	"context"
	"crypto/tls"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openmyst/openmyst/hermes/api"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/httpserve"
	"github.com/openmyst/openmyst/payments"
)

// openAPI is the API description served at /openapi.json; a test keeps it
// equal to Routes.
//
//go:embed openapi.json
var openAPI []byte

// maxBody bounds every request body.
const maxBody = 16 << 10

// Route is one endpoint of the HTTP API.
type Route struct {
	// Method and Path as in the OpenAPI document ({name} for parameters).
	Method, Path string
	handler      func(s *Service, w http.ResponseWriter, r *http.Request)
}

// Routes lists the HTTP API's endpoints.
func Routes() []Route {
	return []Route{
		{http.MethodPost, api.PathExchange, (*Service).handleExchange},
		{http.MethodPost, api.PathReveal, (*Service).handleReveal},
		{http.MethodGet, api.PathConsumers + "{identity}", (*Service).handleConsumer},
		{http.MethodGet, api.PathProviders + "{identity}", (*Service).handleProvider},
		{http.MethodGet, api.PathInfo, (*Service).handleInfo},
		{http.MethodGet, api.PathHealth, func(_ *Service, w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{http.MethodGet, api.PathOpenAPI, func(_ *Service, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(openAPI)
		}},
	}
}

// Handler returns the HTTP API, with Prometheus metrics from gatherer at
// /metrics (nil: the default gatherer).
func (s *Service) Handler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range Routes() {
		h := rt.handler
		f := func(w http.ResponseWriter, r *http.Request) { h(s, w, r) }
		if strings.HasPrefix(rt.Path, "/v1/") {
			f = s.limitSource(f)
		}
		mux.HandleFunc(rt.Method+" "+rt.Path, f)
	}
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	var b api.ErrorBody
	b.Error.Code = CodeOf(err)
	b.Error.Message = err.Error()
	var e *Error
	if errors.As(err, &e) && e.Code == CodeUnavailable {
		b.Error.Message = e.Msg // internal causes stay in the logs
	}
	if e != nil && e.Code == CodeRateLimited {
		// Whole seconds, rounded up (RFC 9110 §10.2.3).
		secs := int64(math.Ceil(min(e.RetryAfter, time.Hour).Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
	writeJSON(w, b.Error.Code.HTTPStatus(), b)
}

// limitSource wraps an API handler with the per-source rate limit. Over
// it, the request is answered 429 rate_limited before its body is read,
// and the answer is held back until the source may send again (at most
// maxTarpit; up to maxTarpitted answers at once, beyond that the answer
// is immediate and closes the connection): a flooder that ignores
// Retry-After waits on its own connections instead of costing the hermes
// a request per round trip. writeRejection charges the same source
// (sourceOf the request's RemoteAddr) for junk.
func (s *Service) limitSource(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		src := sourceOf(r.RemoteAddr)
		if ok, after := s.sources.Reserve(src, s.now()); !ok {
			s.m.RateLimited.WithLabelValues("source").Inc()
			s.tarpitWait(r.Context(), w, after)
			writeErr(w, rateLimited(after, "source %s is over its request rate", src))
			return
		}
		h(w, r)
	}
}

// writeRejection answers err; a rejection that marks the request as junk
// or from a stranger (a malformed body, a bad signature, an unregistered
// identity, another chain, hermes or channel, a wrong preimage) costs its
// source Limits.RejectPenalty more tokens.
func (s *Service) writeRejection(w http.ResponseWriter, r *http.Request, err error) {
	switch CodeOf(err) {
	case CodeBadRequest, CodeUnsupportedMedia, CodeBadSignature, CodeNotRegistered, CodeWrongChain, CodeWrongHermes, CodeWrongChannel, CodeBadFee, CodeBadPreimage:
		s.sources.Charge(sourceOf(r.RemoteAddr), s.cfg.Limits.RejectPenalty, s.now())
	}
	writeErr(w, err)
}

// Tarpit bounds (see limitSource).
const (
	maxTarpit    = time.Second
	maxTarpitted = 1024
)

// tarpitWait holds a rate-limited answer back for min(after, maxTarpit),
// or marks the connection to be closed when too many answers are held.
func (s *Service) tarpitWait(ctx context.Context, w http.ResponseWriter, after time.Duration) {
	select {
	case s.tarpit <- struct{}{}:
	default:
		w.Header().Set("Connection", "close")
		return
	}
	defer func() { <-s.tarpit }()
	t := time.NewTimer(min(after, maxTarpit))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sourceOf is the rate-limit key of a remote address: the IPv4 address,
// or the /64 an IPv6 address is in (one host usually holds a whole /64).
// An unparsable address (not from a TCP listener) shares the zero key.
func sourceOf(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// readBody reads a request body of at most maxBody bytes, which must be
// declared Content-Type: application/json (parameters such as charset
// allowed): anything else is refused before it is read.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	// The exact media type needs no parsing (ParseMediaType allocates a
	// map per call).
	if ct := r.Header.Get("Content-Type"); ct != api.ContentType {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != api.ContentType {
			return nil, reject(CodeUnsupportedMedia, "Content-Type %q: the body must be %s", ct, api.ContentType)
		}
	}
	rd := http.MaxBytesReader(w, r.Body, maxBody)
	if n := r.ContentLength; n > 0 && n <= maxBody {
		// One exact allocation instead of io.ReadAll's growing buffer (the
		// server ends the body at Content-Length).
		body := make([]byte, n)
		if _, err := io.ReadFull(rd, body); err != nil {
			return nil, reject(CodeBadRequest, "read body: %v", err)
		}
		return body, nil
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		return nil, reject(CodeBadRequest, "read body: %v", err)
	}
	return body, nil
}

// writeExchange writes the 200 answer to an exchange message: the
// api.ExchangeResponse JSON, built directly around the promise's own
// encoding (no reflection, no re-compaction of the nested object).
func writeExchange(w http.ResponseWriter, res *Result) {
	p, err := res.Promise.MarshalJSON()
	if err != nil {
		writeErr(w, unavailable("encode hermes promise", err))
		return
	}
	b := make([]byte, 0, len(p)+40)
	b = append(b, `{"promise":`...)
	b = append(b, p...)
	b = append(b, `,"replayed":`...)
	b = strconv.AppendBool(b, res.Replayed)
	b = append(b, "}\n"...)
	h := w.Header()
	h.Set("Content-Type", api.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (s *Service) handleExchange(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		s.writeRejection(w, r, err)
		return
	}
	m, err := payments.DecodeExchangeMessage(body)
	if err != nil {
		code := CodeBadRequest
		if errors.Is(err, identity.ErrBadSignature) { // e.g. high s: the chain would refuse it
			code = CodeBadSignature
		}
		s.m.Rejected.WithLabelValues(string(code)).Inc()
		s.writeRejection(w, r, reject(code, "%v", err))
		return
	}
	res, err := s.Exchange(r.Context(), m)
	if err != nil {
		if CodeOf(err) == CodeUnavailable {
			s.log.Warn("hermes: exchange unavailable", "err", err)
		}
		s.writeRejection(w, r, err)
		return
	}
	writeExchange(w, res)
}

func (s *Service) handleReveal(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		s.writeRejection(w, r, err)
		return
	}
	q, err := api.DecodeRevealRequest(body)
	if err != nil {
		s.writeRejection(w, r, reject(CodeBadRequest, "%v", err))
		return
	}
	n, err := s.Reveal(r.Context(), q.Provider, q.Hashlock, q.R[:])
	if err != nil {
		s.writeRejection(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.RevealResponse{Revealed: n})
}

func pathIdentity(r *http.Request) (common.Address, error) {
	var a common.Address
	if err := api.DecodeHexExact(strings.ToLower(r.PathValue("identity")), a[:]); err != nil {
		return a, reject(CodeBadRequest, "identity: %v", err)
	}
	return a, nil
}

func dec(x *big.Int) string {
	if x == nil {
		return "0"
	}
	return x.String()
}

// loadPathIdentity loads the state of the identity in r's path, or writes
// the error and returns false.
func loadPathIdentity[V any](w http.ResponseWriter, r *http.Request, load func(context.Context, common.Address) (V, error)) (V, bool) {
	id, err := pathIdentity(r)
	if err == nil {
		var v V
		if v, err = load(r.Context(), id); err == nil {
			return v, true
		}
	}
	writeErr(w, err)
	var zero V
	return zero, false
}

func (s *Service) handleConsumer(w http.ResponseWriter, r *http.Request) {
	v, ok := loadPathIdentity(w, r, s.Consumer)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"identity": strings.ToLower(v.Identity.Hex()), "channel": strings.ToLower(v.Channel.Hex()),
		"promised": dec(v.Promised), "settled": dec(v.Settled), "balance": dec(v.Balance), "outstanding": dec(v.Outstanding),
	})
}

func (s *Service) handleProvider(w http.ResponseWriter, r *http.Request) {
	v, ok := loadPathIdentity(w, r, s.Provider)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, api.ProviderResponse{
		Identity: strings.ToLower(v.Identity.Hex()), ChannelID: "0x" + hex.EncodeToString(v.ChannelID[:]),
		Earned: dec(v.Earned), Settled: dec(v.Settled), Unrevealed: v.Unrevealed, LatestPromise: v.Latest,
	})
}

func (s *Service) handleInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.Info{
		ChainID: dec(s.cfg.ChainID), HermesID: strings.ToLower(s.cfg.HermesID.Hex()), Operator: strings.ToLower(s.cfg.Operator.Address().Hex()),
		FeeBasisPoints: s.cfg.FeeBasisPoints, MinConsumerFee: dec(s.cfg.MinConsumerFee), SettleThreshold: dec(s.cfg.SettleThreshold), MaxUnrevealed: s.cfg.MaxUnrevealed,
	})
}

// Serve serves h on ln (plain HTTP) until ctx is done, then shuts down
// gracefully.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	return serve(ctx, ln, h, nil)
}

// ServeTLS is Serve over TLS with cfg (see CertFiles.TLSConfig).
func ServeTLS(ctx context.Context, ln net.Listener, h http.Handler, cfg *tls.Config) error {
	if cfg == nil {
		return errors.New("hermes: ServeTLS needs a TLS config")
	}
	return serve(ctx, ln, h, cfg)
}

func serve(ctx context.Context, ln net.Listener, h http.Handler, cfg *tls.Config) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 30 * time.Second, TLSConfig: cfg}
	if err := httpserve.Serve(ctx, srv, ln, 10*time.Second); err != nil {
		return fmt.Errorf("hermes: %w", err)
	}
	return nil
}
