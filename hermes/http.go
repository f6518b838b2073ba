package hermes

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openmyst/openmyst/identity"
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
		{http.MethodPost, "/v1/exchange", (*Service).handleExchange},
		{http.MethodPost, "/v1/reveal", (*Service).handleReveal},
		{http.MethodGet, "/v1/consumers/{identity}", (*Service).handleConsumer},
		{http.MethodGet, "/v1/providers/{identity}", (*Service).handleProvider},
		{http.MethodGet, "/v1/info", (*Service).handleInfo},
		{http.MethodGet, "/healthz", func(_ *Service, w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{http.MethodGet, "/openapi.json", func(_ *Service, w http.ResponseWriter, _ *http.Request) {
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
		mux.HandleFunc(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) { h(s, w, r) })
	}
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return mux
}

// ErrorBody is the JSON body of every API error.
type ErrorBody struct {
	// Error holds the code and reason.
	Error struct {
		// Code is the stable rejection code.
		Code Code `json:"code"`
		// Message explains it.
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	var b ErrorBody
	b.Error.Code = CodeOf(err)
	b.Error.Message = err.Error()
	var e *Error
	if errors.As(err, &e) && e.Code == CodeUnavailable {
		b.Error.Message = e.Msg // internal causes stay in the logs
	}
	writeJSON(w, b.Error.Code.HTTPStatus(), b)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, reject(CodeBadRequest, "read body: %v", err)
	}
	return body, nil
}

// ExchangeResponse is the answer to POST /v1/exchange.
type ExchangeResponse struct {
	// Promise is the hermes promise for the provider.
	Promise payments.Promise `json:"promise"`
	// Replayed is true when the message had been accepted before.
	Replayed bool `json:"replayed"`
}

func (s *Service) handleExchange(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeErr(w, err)
		return
	}
	m, err := payments.DecodeExchangeMessage(body)
	if err != nil {
		code := CodeBadRequest
		if errors.Is(err, identity.ErrBadSignature) { // e.g. high s: the chain would refuse it
			code = CodeBadSignature
		}
		s.m.Rejected.WithLabelValues(string(code)).Inc()
		writeErr(w, reject(code, "%v", err))
		return
	}
	res, err := s.Exchange(r.Context(), m)
	if err != nil {
		if CodeOf(err) == CodeUnavailable {
			s.log.Warn("hermes: exchange unavailable", "err", err)
		}
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ExchangeResponse{Promise: res.Promise, Replayed: res.Replayed})
}

// RevealRequest is the body of POST /v1/reveal.
type RevealRequest struct {
	// Provider is the provider identity the hashlock was issued to.
	Provider common.Address
	// Hashlock is keccak256(R).
	Hashlock [32]byte
	// R is the 32-byte secret.
	R [32]byte
}

// MarshalJSON encodes the wire form {"provider","hashlock","r"} as 0x-hex.
func (q RevealRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"provider": strings.ToLower(q.Provider.Hex()),
		"hashlock": "0x" + hex.EncodeToString(q.Hashlock[:]),
		"r":        "0x" + hex.EncodeToString(q.R[:]),
	})
}

// DecodeRevealRequest strictly decodes a reveal request: exactly the
// fields provider, hashlock and r, as 0x-hex of 20, 32 and 32 bytes.
func DecodeRevealRequest(data []byte) (*RevealRequest, error) {
	var raw struct {
		Provider *string `json:"provider"`
		Hashlock *string `json:"hashlock"`
		R        *string `json:"r"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("reveal request: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("reveal request: trailing data")
	}
	var q RevealRequest
	for _, f := range []struct {
		name string
		v    *string
		dst  []byte
	}{{"provider", raw.Provider, q.Provider[:]}, {"hashlock", raw.Hashlock, q.Hashlock[:]}, {"r", raw.R, q.R[:]}} {
		if f.v == nil {
			return nil, fmt.Errorf("reveal request: missing field %q", f.name)
		}
		if err := decodeHexExact(*f.v, f.dst); err != nil {
			return nil, fmt.Errorf("reveal request: field %q: %w", f.name, err)
		}
	}
	return &q, nil
}

func decodeHexExact(s string, dst []byte) error {
	if !strings.HasPrefix(s, "0x") {
		return errors.New("must start with 0x")
	}
	if len(s) != 2+2*len(dst) {
		return fmt.Errorf("must be %d bytes", len(dst))
	}
	if _, err := hex.Decode(dst, []byte(s[2:])); err != nil {
		return errors.New("not hex")
	}
	return nil
}

// RevealResponse is the answer to POST /v1/reveal.
type RevealResponse struct {
	// Revealed is how many promises were newly unlocked (0 on a retry).
	Revealed int `json:"revealed"`
}

func (s *Service) handleReveal(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeErr(w, err)
		return
	}
	q, err := DecodeRevealRequest(body)
	if err != nil {
		writeErr(w, reject(CodeBadRequest, "%v", err))
		return
	}
	n, err := s.Reveal(r.Context(), q.Provider, q.Hashlock, q.R[:])
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, RevealResponse{Revealed: n})
}

func pathIdentity(r *http.Request) (common.Address, error) {
	var a common.Address
	if err := decodeHexExact(strings.ToLower(r.PathValue("identity")), a[:]); err != nil {
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

func (s *Service) handleConsumer(w http.ResponseWriter, r *http.Request) {
	id, err := pathIdentity(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	v, err := s.Consumer(r.Context(), id)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"identity": strings.ToLower(v.Identity.Hex()), "channel": strings.ToLower(v.Channel.Hex()),
		"promised": dec(v.Promised), "settled": dec(v.Settled), "balance": dec(v.Balance), "outstanding": dec(v.Outstanding),
	})
}

// ProviderResponse is the answer to GET /v1/providers/{identity}.
type ProviderResponse struct {
	// Identity is the provider (0x-hex).
	Identity string `json:"identity"`
	// ChannelID is the provider's channel id in the hermes contract.
	ChannelID string `json:"channel_id"`
	// Earned is the cumulative amount promised to the provider (wei).
	Earned string `json:"earned"`
	// Settled is how much the provider has settled on chain (wei).
	Settled string `json:"settled"`
	// Unrevealed counts promises waiting for their R.
	Unrevealed int64 `json:"unrevealed"`
	// LatestPromise is the latest hermes promise, null if none.
	LatestPromise *payments.Promise `json:"latest_promise"`
}

func (s *Service) handleProvider(w http.ResponseWriter, r *http.Request) {
	id, err := pathIdentity(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	v, err := s.Provider(r.Context(), id)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ProviderResponse{
		Identity: strings.ToLower(v.Identity.Hex()), ChannelID: "0x" + hex.EncodeToString(v.ChannelID[:]),
		Earned: dec(v.Earned), Settled: dec(v.Settled), Unrevealed: v.Unrevealed, LatestPromise: v.Latest,
	})
}

// Info describes this hermes (GET /v1/info).
type Info struct {
	// ChainID is the chain this hermes serves.
	ChainID string `json:"chain_id"`
	// HermesID is the Hermes contract address.
	HermesID string `json:"hermes_id"`
	// Operator signs the hermes promises.
	Operator string `json:"operator"`
	// FeeBasisPoints is the hermes fee deducted at provider settlement.
	FeeBasisPoints uint16 `json:"fee_basis_points"`
	// MinConsumerFee is the lowest transactor fee on consumer promises (wei).
	MinConsumerFee string `json:"min_consumer_fee"`
	// SettleThreshold is the revealed unsettled amount that triggers a
	// consumer settlement (wei).
	SettleThreshold string `json:"settle_threshold"`
	// MaxUnrevealed caps a provider's promises waiting for R (0: none).
	MaxUnrevealed int `json:"max_unrevealed"`
}

func (s *Service) handleInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Info{
		ChainID: dec(s.cfg.ChainID), HermesID: strings.ToLower(s.cfg.HermesID.Hex()), Operator: strings.ToLower(s.cfg.Operator.Address().Hex()),
		FeeBasisPoints: s.cfg.FeeBasisPoints, MinConsumerFee: dec(s.cfg.MinConsumerFee), SettleThreshold: dec(s.cfg.SettleThreshold), MaxUnrevealed: s.cfg.MaxUnrevealed,
	})
}

// Serve serves h on ln until ctx is done, then shuts down gracefully.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("hermes: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
