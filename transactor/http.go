package transactor

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/time/rate"

	"github.com/openmyst/openmyst/internal/httpserve"
	"github.com/openmyst/openmyst/ratelimit"
)

// openAPI describes the HTTP API (served at PathOpenAPI); a test keeps it
// equal to Routes.
//
//go:embed openapi.json
var openAPI []byte

// maxBody bounds every request body.
const maxBody = 8 << 10

// Limits are the HTTP API's abuse limits.
type Limits struct {
	// PerSource is the request rate per source address (all routes).
	PerSource rate.Limit
	// SourceBurst is the burst per source address.
	SourceBurst int
	// PerIdentity is the relayed-call rate per identity.
	PerIdentity rate.Limit
	// IdentityBurst is the burst per identity.
	IdentityBurst int
	// ZeroFeeRegistrations is the rate of zero-fee (zero-stake)
	// registrations per source address.
	ZeroFeeRegistrations rate.Limit
	// ZeroFeeBurst is their burst per source.
	ZeroFeeBurst int
	// MaxKeys bounds each limiter's remembered keys.
	MaxKeys int
	// MaxInFlight bounds concurrently relayed calls (503 beyond).
	MaxInFlight int
}

// DefaultLimits: 2 requests/s (burst 20) per source, one relayed call per
// 10 s (burst 3) per identity, one zero-fee registration per minute
// (burst 3) per source, 65,536 keys per limiter, 16 calls in flight.
var DefaultLimits = Limits{
	PerSource: 2, SourceBurst: 20,
	PerIdentity: rate.Every(10 * time.Second), IdentityBurst: 3,
	ZeroFeeRegistrations: rate.Every(time.Minute), ZeroFeeBurst: 3,
	MaxKeys: ratelimit.DefaultMaxKeys, MaxInFlight: DefaultMaxInFlight,
}

type limiters struct {
	source, zeroFee *ratelimit.Keyed[netip.Addr]
	ident           *ratelimit.Keyed[common.Address]
}

func newLimiters(l Limits) *limiters {
	return &limiters{
		source:  ratelimit.New[netip.Addr](l.PerSource, l.SourceBurst, l.MaxKeys),
		zeroFee: ratelimit.New[netip.Addr](l.ZeroFeeRegistrations, l.ZeroFeeBurst, l.MaxKeys),
		ident:   ratelimit.New[common.Address](l.PerIdentity, l.IdentityBurst, l.MaxKeys),
	}
}

// source is the request's remote address (IPv4-mapped unmapped; an IPv6
// address limited per /64 so one host cannot rotate through its prefix).
func source(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// route is one endpoint: "METHOD /path" and its handler.
type route struct {
	pattern string
	h       http.HandlerFunc
}

func (s *Service) routes() []route {
	return []route{
		{"GET " + PathFees, s.limited(s.handleFees)},
		{"GET " + PathHealth, func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{"GET " + PathOpenAPI, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(openAPI)
		}},
		{"POST " + PathRegister, s.limited(relay(s, DecodeRegisterRequest, func(r RegisterRequest) common.Address { return r.Identity },
			func(ctx context.Context, req *http.Request, r RegisterRequest) (TxResponse, error) {
				src := source(req)
				return s.Register(ctx, r, func() bool { return s.lim.zeroFee.Allow(src, time.Now()) })
			}))},
		{"POST " + PathBeneficiary, s.limited(relay(s, DecodeBeneficiaryRequest, func(r BeneficiaryRequest) common.Address { return r.Identity },
			func(ctx context.Context, _ *http.Request, r BeneficiaryRequest) (TxResponse, error) {
				return s.SetBeneficiary(ctx, r)
			}))},
		{"POST " + PathSettle, s.limited(relay(s, DecodeSettleRequest, func(r SettleRequest) common.Address { return r.Settlement.Provider },
			func(ctx context.Context, _ *http.Request, r SettleRequest) (TxResponse, error) {
				return s.Settle(ctx, r)
			}))},
		{"POST " + PathRedeem, s.limited(relay(s, DecodeRedeemRequest, func(r RedeemRequest) common.Address { return r.Identity },
			func(ctx context.Context, _ *http.Request, r RedeemRequest) (TxResponse, error) {
				return s.Redeem(ctx, r)
			}))},
	}
}

// Handler is the HTTP API (documented in openapi.json).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.routes() {
		mux.HandleFunc(r.pattern, r.h)
	}
	return mux
}

// limited applies the per-source limit.
func (s *Service) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := s.lim.source.Reserve(source(r), time.Now()); !ok {
			tooMany(w, wait, "too many requests from this source")
			return
		}
		h(w, r)
	}
}

func tooMany(w http.ResponseWriter, wait time.Duration, msg string) {
	secs := int64(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeJSON(w, http.StatusTooManyRequests, ErrorResponse{Code: CodeRateLimited, Message: msg})
}

// relay decodes a request strictly, applies the per-identity limit and
// the in-flight bound, and runs call.
func relay[R any](s *Service, decode func([]byte) (R, error), ident func(R) common.Address,
	call func(context.Context, *http.Request, R) (TxResponse, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, ErrorResponse{Code: CodeBadRequest, Message: fmt.Sprintf("body: %v", err)})
			return
		}
		r, err := decode(body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, ErrorResponse{Code: CodeBadRequest, Message: err.Error()})
			return
		}
		if ok, wait := s.lim.ident.Reserve(ident(r), time.Now()); !ok {
			tooMany(w, wait, "too many calls for this identity")
			return
		}
		select {
		case s.sem <- struct{}{}:
			defer func() { <-s.sem }()
		default:
			writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Code: CodeBusy, Message: "too many calls in flight; retry later"})
			return
		}
		out, err := call(req.Context(), req, r)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				writeJSON(w, e.Status, ErrorResponse{Code: e.Code, Message: e.Error()})
				return
			}
			writeJSON(w, http.StatusInternalServerError, ErrorResponse{Code: CodeChain, Message: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Service) handleFees(w http.ResponseWriter, _ *http.Request) {
	q, err := s.Quote()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Code: CodeChain, Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, q)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Serve serves h on ln until ctx ends, then shuts down gracefully. Writes
// may take minutes: a relayed call answers once its transaction is mined.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 3 * time.Minute, IdleTimeout: time.Minute}
	if err := httpserve.Serve(ctx, srv, ln, 10*time.Second); err != nil {
		return fmt.Errorf("transactor: %w", err)
	}
	return nil
}
